import type { EventSink } from '../core/events.js';
import type { Redactor } from '../core/redact.js';
import type { Timeouts } from '../core/timeouts.js';
import type { ImageEngine } from '../engine/image-engine.js';
import type { PinStore } from '../promote/pin-store.js';
import type { Registry } from '../publish/registry.js';
import type { SmokeVerdictStore } from '../smoke/verdict-store.js';
import type { TemplateSources } from '../sources/source.js';

export type { TemplateSources };

/** Where time comes from (a fixed clock in tests). */
export type Clock = () => Date;

/**
 * Every port a use case may need, built once by the composition root (`openPorts`) and passed
 * down. Each use case takes only the ports it uses (`Pick<Ports, …>`), so its signature says
 * what it touches.
 */
export interface Ports {
  /** The Docker engine: build, push, pull, and the containers smoke boots. */
  readonly engine: ImageEngine;
  /** The container registry images are published to. */
  readonly registry: Registry;
  /** Runtime image pins and their history. */
  readonly pins: PinStore;
  /** Smoke verdicts by digest (the pin store implements it). */
  readonly verdicts: SmokeVerdictStore;
  /** Template sources, with their tokens bound. */
  readonly sources: TemplateSources;
  /** Progress events. */
  readonly sink: EventSink;
  readonly clock: Clock;
  /** Scrubs every credential the process holds from messages. */
  readonly redactor: Redactor;
  /** The limits every remote call obeys (per request, per retried operation). */
  readonly timeouts: Timeouts;
}
