import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Signer } from '../attest/dsse.js';
import { SlipwayError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import { silentSink } from '../core/events.js';
import { Redactor } from '../core/redact.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../core/timeouts.js';
import { lazyEngine } from '../engine/lazy-engine.js';
import type { Clock, Ports, TargetPorts } from '../release/ports.js';
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
  /**
   * Load the signing key into {@link Ports.signer}: true for the settings' key (if any), or a
   * key file (`--sign-key`). Otherwise the signer is null.
   */
  readonly sign?: boolean | string | undefined;
  /** A second registry (`--to-registry`): opens {@link TargetPorts} with its own credentials. */
  readonly targetRegistry?: string | undefined;
}

/** The ports every command gets: they open nothing until used (the signer is loaded only when asked). */
export type BasePorts = Pick<
  Ports,
  'engine' | 'sources' | 'sink' | 'clock' | 'redactor' | 'signer' | 'timeouts'
>;

/** The ports {@link openPorts} returns for a request: the base ports plus what the request named. */
export type OpenedPorts<R extends PortRequest> = BasePorts &
  (R['registry'] extends string ? Pick<Ports, 'registry' | 'attestations'> : unknown) &
  (R['pinStore'] extends string ? Pick<Ports, 'pins' | 'verdicts'> : unknown) &
  (R['targetRegistry'] extends string ? TargetPorts : unknown) & {
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
  const signer = request.sign ? await loadSigner(settings, request.cwd, request.sign) : null;
  const base: BasePorts = {
    signer,
    // dockerode (and its dependencies) load on the first engine call: `tag` and `stage` never make one.
    engine: lazyEngine(async () =>
      (await import('../engine/docker-engine.js')).dockerEngine(settings.docker, {
        timeouts: engineTimeoutsOf(settings),
      }),
    ),
    // The source implementations (and the manifest schema they check pins with) load on the first fetch.
    sources: async (template, ctx) =>
      (await import('../sources/source-for.js')).sourceFor(
        template,
        { timeouts, ...ctx },
        settings.sourceTokens,
      ),
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
    // Each adapter loads only when the request names it: `tag` never loads a pin store or git.
    let registry = {};
    if (request.registry !== undefined) {
      const [{ openRegistry }, { RegistryAttestationStore }] = await Promise.all([
        import('../publish/open.js'),
        import('../attest/store.js'),
      ]);
      const opened = await openRegistry(request.registry, {
        env: settings.env,
        redactor,
        timeouts,
        ...settings.registryCredentials,
      });
      registry = { registry: opened, attestations: new RegistryAttestationStore(opened) };
    }
    let target = {};
    if (request.targetRegistry !== undefined) {
      const [{ openRegistry }, { RegistryAttestationStore }] = await Promise.all([
        import('../publish/open.js'),
        import('../attest/store.js'),
      ]);
      const opened = await openRegistry(request.targetRegistry, {
        env: settings.env,
        redactor,
        timeouts,
        ...settings.targetRegistryCredentials,
      });
      target = { target: { registry: opened, attestations: new RegistryAttestationStore(opened) } };
    }
    let stores = {};
    if (request.pinStore !== undefined) {
      const { openPinStore } = await import('../promote/open.js');
      const pins = await openPinStore(request.pinStore, { cwd: request.cwd, timeouts });
      closers.push(() => pins.close());
      stores = { pins, verdicts: pins };
    }
    return { ...base, ...registry, ...target, ...stores, close } as OpenedPorts<R>;
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

/** The signer for a request: a `--sign-key` file, else the settings' key; null when there is none. */
async function loadSigner(settings: Settings, cwd: string, sign: true | string): Promise<Signer | null> {
  const source = typeof sign === 'string' ? { file: sign } : settings.signingKey;
  if (source === undefined) return null;
  const { pemSigner } = await import('../attest/dsse.js');
  if ('pem' in source) return pemSigner(source.pem);
  const file = path.resolve(cwd, source.file);
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new SlipwayError(
      'USAGE',
      `cannot read the signing key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      {
        resource: file,
        hint: 'pass --sign-key FILE or set SLIPWAY_SIGNING_KEY_FILE to a readable PEM file',
      },
    );
  }
  return pemSigner(pem);
}
