import type { EventSink } from '../core/events.js';
import { silentSink } from '../core/events.js';
import { Redactor } from '../core/redact.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../core/timeouts.js';
import { dockerEngine } from '../engine/docker-engine.js';
import { openPinStore } from '../promote/open.js';
import { openRegistry } from '../publish/open.js';
import { sourceFor } from '../sources/index.js';
import type { Clock, Ports } from './ports.js';
import { engineTimeoutsOf, type Settings } from './settings.js';

/** Which ports to open, and with what. Ports that need a URL are opened only when it is given. */
export interface PortRequest {
  /** Resolves relative `file:` pin store paths. */
  readonly cwd: string;
  readonly sink?: EventSink;
  readonly clock?: Clock;
  /** Limits for every remote call (default DEFAULT_TIMEOUTS). */
  readonly timeouts?: Timeouts;
  /** Shared with the caller's output, so credentials a port learns (ECR tokens) are scrubbed there too. */
  readonly redactor?: Redactor;
  /** A registry URL (`oci://…`, `ecr://…`): opens {@link Ports.registry}. */
  readonly registry?: string | undefined;
  /** A pin store URL (`file:…`, `postgres://…`): opens {@link Ports.pins} and {@link Ports.verdicts}. */
  readonly pinStore?: string | undefined;
}

/** The ports every command gets: they open nothing until used. */
export type BasePorts = Pick<Ports, 'engine' | 'sources' | 'sink' | 'clock' | 'redactor' | 'timeouts'>;

/** The ports {@link openPorts} returns for a request: the base ports plus what the request named. */
export type OpenedPorts<R extends PortRequest> = BasePorts &
  (R['registry'] extends string ? Pick<Ports, 'registry'> : unknown) &
  (R['pinStore'] extends string ? Pick<Ports, 'pins' | 'verdicts'> : unknown) & {
    /** Closes what was opened (database pools). Idempotent. */
    close(): Promise<void>;
  };

/**
 * The composition root: the one place where settings become port implementations (dockerode
 * for the engine, OCI or ECR for the registry, a file or PostgreSQL pin store, git/archive/path
 * template sources). The CLI calls it once per command; library users call it, or build
 * {@link Ports} themselves (tests do, with their own stores).
 */
export async function openPorts<R extends PortRequest>(
  settings: Settings,
  request: R,
): Promise<OpenedPorts<R>> {
  const redactor = (request.redactor ?? new Redactor()).add(...settings.secrets);
  const timeouts = request.timeouts ?? DEFAULT_TIMEOUTS;
  const base: BasePorts = {
    engine: dockerEngine(settings.docker, { timeouts: engineTimeoutsOf(settings) }),
    sources: (template, ctx) => sourceFor(template, { timeouts, ...ctx }, settings.sourceTokens),
    sink: request.sink ?? silentSink,
    clock: request.clock ?? (() => new Date()),
    redactor,
    timeouts,
  };
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const registry =
      request.registry === undefined
        ? {}
        : {
            registry: await openRegistry(request.registry, {
              env: settings.env,
              redactor,
              timeouts,
              ...settings.registryCredentials,
            }),
          };
    let stores = {};
    if (request.pinStore !== undefined) {
      const pins = await openPinStore(request.pinStore, { cwd: request.cwd, timeouts });
      closers.push(() => pins.close());
      stores = { pins, verdicts: pins };
    }
    return { ...base, ...registry, ...stores, close } as OpenedPorts<R>;
  } catch (err) {
    await close();
    throw err;
  }
}

/** Opens the requested ports, runs `fn` with them, and always closes them. */
export async function withPorts<R extends PortRequest, T>(
  settings: Settings,
  request: R,
  fn: (ports: OpenedPorts<R>) => Promise<T>,
): Promise<T> {
  const ports = await openPorts(settings, request);
  try {
    return await fn(ports);
  } finally {
    await ports.close();
  }
}
