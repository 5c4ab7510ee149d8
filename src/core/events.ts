/**
 * Progress is a stream of typed events. The library emits them through an {@link EventSink}
 * passed in by the caller and never prints; the CLI decides how to render them (plain lines for
 * CI and terminals, NDJSON for machines).
 */

/** The pipeline stage an event belongs to. */
export type Stage =
  | 'verify'
  | 'source'
  | 'stage'
  | 'preflight'
  | 'plan'
  | 'build'
  | 'push'
  | 'smoke'
  | 'attest'
  | 'pins';

/** Severity of a log event. */
export type Level = 'debug' | 'info' | 'warn' | 'error';

/** A progress event. `kind` is the discriminator; every event names its stage. */
export type SlipwayEvent =
  | { kind: 'log'; stage: Stage; level: Level; message: string; subject?: string }
  | { kind: 'step-start'; stage: Stage; subject: string; message: string }
  | { kind: 'step-done'; stage: Stage; subject: string; message: string; skipped?: boolean }
  | { kind: 'step-failed'; stage: Stage; subject: string; message: string }
  /** A line of output from a tool (a build step, a container's log). */
  | { kind: 'output'; stage: Stage; subject: string; line: string }
  /**
   * Transfer progress of one layer (a push): for live terminal rendering; the plain and NDJSON
   * renderers drop it, so their output stays one line per step.
   */
  | {
      kind: 'progress';
      stage: Stage;
      subject: string;
      /** The layer (short digest) the progress is about. */
      id: string;
      /** The engine's status for it (`Pushing`, `Pushed`, `Layer already exists`, ...). */
      status: string;
      /** Bytes done and in all, when the engine says. */
      current?: number;
      total?: number;
    };

/** Receives events. Must not throw. */
export type EventSink = (event: SlipwayEvent) => void;

/** A sink that drops everything (the default for library callers that do not listen). */
export const silentSink: EventSink = () => {};

/** A sink that records events in memory (for tests and for callers that render afterwards). */
export function collectingSink(): EventSink & { events: SlipwayEvent[] } {
  const events: SlipwayEvent[] = [];
  const sink = ((e: SlipwayEvent) => {
    events.push(e);
  }) as EventSink & { events: SlipwayEvent[] };
  sink.events = events;
  return sink;
}
