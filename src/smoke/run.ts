import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import {
  type BoundPorts,
  GenericContainer,
  getContainerRuntimeClient,
  type ImagePullPolicy,
  type WaitStrategy,
} from 'testcontainers';
import { isUnreachable, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { ImageRef } from '../core/image-ref.js';
import { LABELS } from '../core/labels.js';
import { Redactor } from '../core/redact.js';
import type { Readiness, SmokeSpec } from '../manifest/schema.js';
import type { EngineAuth } from '../publish/registry.js';
import type { ArchiveEntry } from './archive.js';
import { type ExpectedTemplate, runAssertion } from './assertions.js';
import { execIn, logsOf, statPath, tailLines } from './container-io.js';
import { templatesAsserted, templatesFromLabels } from './expected.js';
import { PullError, pullImage } from './pull.js';
import {
  type AssertionResult,
  type SmokeEvidence,
  type SmokeFailureCode,
  type SmokeReport,
  specDigest,
} from './report.js';

/** Label on every container and volume a smoke run creates; its value is the run id. */
export const SMOKE_LABEL = 'dev.slipway.smoke';

/** What to boot, how, and what to expect. */
export interface SmokeOptions {
  /** A registry reference (by digest, or a tag the pull resolves) with `pull`, else a local image id or name. */
  readonly image: string;
  /** The manifest image name (names the report and the container). */
  readonly imageName: string;
  /** The image's smoke spec from the manifest; undefined fails the run (or skips it with `allowSkip`). */
  readonly spec: SmokeSpec | undefined;
  /** Expected template content by template name (from the staging receipt, or the image's labels). */
  readonly templates: Readonly<Record<string, ExpectedTemplate>>;
  /** Pull `image` from its registry first (post-push): the image is booted exactly as pushed. */
  readonly pull?: { readonly auth: EngineAuth };
  /** Report a missing spec as a skip instead of a failure (local use only; refused with `ci`). */
  readonly allowSkip?: boolean;
  /** Running in CI: skips are refused. */
  readonly ci?: boolean;
  /** Overrides the spec's `timeoutSeconds` for readiness. */
  readonly timeoutSeconds?: number;
  readonly sink?: EventSink;
  /** Aborting stops the run; the container and volumes are still removed, then INTERRUPTED is thrown. */
  readonly signal?: AbortSignal;
  /**
   * The engine client for pulls, volumes and assertions. Default: the client testcontainers
   * resolves (DOCKER_HOST, ~/.testcontainers.properties, the local socket), which also starts
   * the container; a client passed here must address that same engine.
   */
  readonly docker?: Dockerode;
}

const LOG_TAIL = 50;

/** Why the container never became ready. */
class ReadinessFailure extends Error {
  constructor(
    readonly code: 'exited-early' | 'readiness-timeout',
    message: string,
  ) {
    super(message);
    this.name = 'ReadinessFailure';
  }
}

/** Describes a readiness condition for messages. */
export function describeReadiness(ready: Readiness): string {
  if ('log' in ready) return `log line matching /${ready.log}/`;
  if ('file' in ready) return `file ${ready.file} to appear`;
  return `"${ready.exec.join(' ')}" to exit 0`;
}

/**
 * The spec's readiness as a testcontainers wait strategy. Unlike the stock strategies it
 * tells an exited container (with its exit code and last log lines) from one that is still
 * starting, and it never treats a timeout as ready.
 */
class SpecReadiness implements WaitStrategy {
  readyAfter: string | null = null;
  logText = '';
  exitCode: number | null = null;

  constructor(
    private readonly ready: Readiness,
    private timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  withStartupTimeout(startupTimeoutMs: number): this {
    this.timeoutMs = startupTimeoutMs;
    return this;
  }

  isStartupTimeoutSet(): boolean {
    return true;
  }

  getStartupTimeout(): number {
    return this.timeoutMs;
  }

  async waitUntilReady(container: Dockerode.Container, _ports?: BoundPorts): Promise<void> {
    const t0 = Date.now();
    const deadline = t0 + this.timeoutMs;
    const what = describeReadiness(this.ready);
    const re = 'log' in this.ready ? new RegExp(this.ready.log, 'm') : undefined;
    for (;;) {
      this.signal?.throwIfAborted();
      const info = await container.inspect();
      if (!info.State.Running) {
        this.logText = await logsOf(container);
        this.exitCode = info.State.ExitCode;
        const last = tailLines(this.logText, 1)[0];
        throw new ReadinessFailure(
          'exited-early',
          `the container exited with code ${info.State.ExitCode}${info.State.OOMKilled ? ' (OOM-killed)' : ''} before it was ready (waiting for ${what})${last ? `; last log line: "${last}"` : '; it wrote no log'}`,
        );
      }
      if (re) this.logText = await logsOf(container);
      if (await this.check(container, re, Math.max(1000, deadline - Date.now()))) {
        this.readyAfter = `${what} after ${((Date.now() - t0) / 1000).toFixed(1)}s`;
        return;
      }
      if (Date.now() >= deadline) {
        this.logText = await logsOf(container);
        throw new ReadinessFailure(
          'readiness-timeout',
          `the container was not ready within ${Math.round(this.timeoutMs / 1000)}s: no ${what}${tailLines(this.logText, 1).length === 0 ? ' (it wrote no log)' : ''}`,
        );
      }
      await sleep(250, undefined, this.signal ? { signal: this.signal } : {});
    }
  }

  private async check(
    container: Dockerode.Container,
    re: RegExp | undefined,
    budgetMs: number,
  ): Promise<boolean> {
    if (re) return re.test(this.logText);
    if ('file' in this.ready) return (await statPath(container, this.ready.file)) !== null;
    if ('exec' in this.ready) {
      try {
        return (
          (await execIn(container, this.ready.exec, { timeoutMs: Math.min(budgetMs, 30_000) })).exitCode === 0
        );
      } catch {
        // A readiness probe that hangs or cannot start is "not ready yet", not a verdict.
        return false;
      }
    }
    return false;
  }
}

/** A GenericContainer that remembers its id as soon as it exists, so a failed start can still be cleaned up. */
class SmokeContainer extends GenericContainer {
  createdId: string | undefined;

  protected override async containerCreated(containerId: string): Promise<void> {
    this.createdId = containerId;
  }
}

// The image was resolved (and pulled) before; testcontainers must never pull on its own.
const NEVER_PULL: ImagePullPolicy = { shouldPull: () => false };

/** Throws SMOKE_SPEC_INVALID for a regular expression that does not compile (a typo must not pass or hang). */
function checkRegexes(imageName: string, spec: SmokeSpec): void {
  const check = (re: string, at: string) => {
    try {
      new RegExp(re, 'm');
    } catch (err) {
      throw new SlipwayError(
        'SMOKE_SPEC_INVALID',
        `images.${imageName}.smoke.${at}: invalid regular expression /${re}/ (${err instanceof Error ? err.message : String(err)})`,
        { resource: imageName, hint: 'fix the expression in manifest.json (JavaScript RegExp syntax)' },
      );
    }
  };
  if ('log' in spec.ready) check(spec.ready.log, 'ready.log');
  spec.assertions.forEach((a, i) => {
    if (a.kind === 'exec' && a.stdout !== undefined) check(a.stdout, `assertions[${i}].stdout`);
  });
}

/** The engine errors' message (dockerode puts the engine's JSON message in `json.message`). */
function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}

/** The repository digest the engine recorded for `name` (RepoDigests holds `name@sha256:...`). */
function repoDigestFor(repoDigests: readonly string[] | undefined, name: string): string | null {
  for (const rd of repoDigests ?? []) {
    const at = rd.lastIndexOf('@');
    if (at > 0 && rd.slice(0, at) === name) return rd.slice(at + 1);
  }
  return null;
}

/**
 * Boots the image and proves its identity: pulls it (post-push), mounts fresh empty volumes,
 * starts it with its own entrypoint, waits for readiness, runs every assertion, copies the
 * evidence out, and always removes the container and volumes. Fails closed: a missing spec,
 * an empty assertion list, an unreachable engine or registry, an early exit and a timeout are
 * failures. Returns the report; throws only for a refused option, an invalid spec, or an abort.
 */
export async function runSmoke(options: SmokeOptions): Promise<SmokeReport> {
  const sink = options.sink ?? silentSink;
  const { imageName, spec } = options;
  const runId = randomBytes(6).toString('hex');
  const startedAt = new Date();
  const t0 = Date.now();
  const evidence: {
    -readonly [K in keyof SmokeEvidence]: SmokeEvidence[K];
  } = {
    runId,
    imageId: null,
    containerId: null,
    volumes: {},
    logTail: [],
    exitCode: null,
    readiness: null,
    listings: {},
  };
  const assertions: AssertionResult[] = [];
  let digest: string | null = null;
  const report = (failure?: { code: SmokeFailureCode; message: string }, skipped = false): SmokeReport => {
    const r: SmokeReport = {
      image: options.image,
      imageName,
      digest,
      specDigest: specDigest(spec),
      passed: failure === undefined && !skipped,
      skipped,
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - t0,
      assertions,
      ...(failure ? { failure } : {}),
      evidence,
    };
    if (skipped)
      sink({
        kind: 'step-done',
        stage: 'smoke',
        subject: imageName,
        message: failure?.message ?? '',
        skipped: true,
      });
    else if (failure)
      sink({
        kind: 'step-failed',
        stage: 'smoke',
        subject: imageName,
        message: `[${failure.code}] ${failure.message}`,
      });
    else
      sink({
        kind: 'step-done',
        stage: 'smoke',
        subject: imageName,
        message: `${assertions.length}/${assertions.length} assertions passed`,
      });
    return r;
  };

  if (options.allowSkip && options.ci) {
    throw new SlipwayError('USAGE', `refusing to allow a smoke skip in CI (image ${imageName})`, {
      resource: imageName,
      hint: 'a skipped smoke run is not a verdict: add a smoke spec to the image in manifest.json instead of --allow-skip',
    });
  }
  if (!spec) {
    const message = `image ${imageName} has no smoke spec in the manifest, so nothing proves its identity`;
    return options.allowSkip
      ? report({ code: 'no-spec', message }, true)
      : report({ code: 'no-spec', message });
  }
  if (spec.assertions.length === 0) {
    return report({
      code: 'no-assertions',
      message: `the smoke spec of ${imageName} has no assertions; an empty list proves nothing and fails`,
    });
  }
  checkRegexes(imageName, spec);
  sink({ kind: 'step-start', stage: 'smoke', subject: imageName, message: `smoke ${options.image}` });

  const redactor = new Redactor().add(options.pull?.auth.password);
  let docker: Dockerode;
  try {
    docker = options.docker ?? (await getContainerRuntimeClient()).container.dockerode;
    await docker.ping();
  } catch (err) {
    return report({
      code: 'engine-unreachable',
      message: `the Docker engine does not answer (${redactor.redact(engineMessage(err))}); start it, or point DOCKER_HOST at it`,
    });
  }

  const created: { containerId: string | undefined; volumes: string[] } = {
    containerId: undefined,
    volumes: [],
  };
  let failure: { code: SmokeFailureCode; message: string } | undefined;
  try {
    failure = await execute();
  } catch (err) {
    if (options.signal?.aborted) {
      await cleanup(docker, created, sink, imageName);
      throw new SlipwayError(
        'INTERRUPTED',
        `smoke of ${imageName} interrupted; its container and volumes were removed`,
        {
          resource: imageName,
          cause: err,
        },
      );
    }
    if (err instanceof SlipwayError) {
      await cleanup(docker, created, sink, imageName);
      throw err;
    }
    failure = isUnreachable(err)
      ? {
          code: 'engine-unreachable',
          message: `the Docker engine stopped answering: ${redactor.redact(engineMessage(err))}`,
        }
      : { code: 'start-failed', message: redactor.redact(engineMessage(err)) };
  }
  const leftovers = await cleanup(docker, created, sink, imageName);
  if (leftovers.length > 0) {
    sink({
      kind: 'log',
      stage: 'smoke',
      level: 'warn',
      subject: imageName,
      message: `could not remove ${leftovers.join(', ')}`,
    });
  }
  return report(failure);

  async function execute(): Promise<{ code: SmokeFailureCode; message: string } | undefined> {
    if (!spec) return undefined;
    // 1. The image, exactly as pushed (pulled by reference) or as built (a local id).
    let imageId: string;
    let labels: Record<string, string> | null = null;
    if (options.pull) {
      const ref = ImageRef.parse(options.image);
      sink({ kind: 'log', stage: 'smoke', level: 'info', subject: imageName, message: `pulling ${ref}` });
      try {
        await pullImage(docker, ref.toString(), options.pull.auth, redactor);
      } catch (err) {
        if (!(err instanceof PullError)) throw err;
        const hint =
          err.kind === 'registry-unreachable'
            ? ' (is the registry up, and the engine allowed to reach it?)'
            : / unauthorized|denied|authentication required/i.test(err.message)
              ? ' (check the registry credentials)'
              : '';
        return { code: err.kind, message: `cannot pull ${ref}: ${err.message}${hint}` };
      }
      options.signal?.throwIfAborted();
      const info = await docker.getImage(ref.toString()).inspect();
      imageId = info.Id;
      labels = info.Config?.Labels ?? null;
      digest = ref.digest ?? repoDigestFor(info.RepoDigests, ref.name);
      if (!digest) {
        return {
          code: 'pull-failed',
          message: `pulled ${ref}, but the engine recorded no registry digest for ${ref.name}`,
        };
      }
    } else {
      try {
        const info = await docker.getImage(options.image).inspect();
        imageId = info.Id;
        labels = info.Config?.Labels ?? null;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) {
          return {
            code: 'image-not-found',
            message: `no local image ${options.image} (build it first, or pass a pushed reference to pull)`,
          };
        }
        throw err;
      }
    }
    evidence.imageId = imageId;
    options.signal?.throwIfAborted();
    // Templates the caller has no expectation for (no receipt here) fall back to the digests
    // the build wrote into the image's labels from its staging receipt.
    const templates = { ...templatesFromLabels(labels, templatesAsserted(spec)), ...options.templates };

    // 2. Fresh empty volumes where provisioning mounts them: the engine copies the image's
    //    directory (content and ownership) into a new named volume, as it does in production.
    for (const [i, target] of spec.boot.emptyVolumes.entries()) {
      const name = `slipway-smoke-${runId}-${i}`;
      await docker.createVolume({ Name: name, Labels: { [SMOKE_LABEL]: runId, [LABELS.image]: imageName } });
      created.volumes.push(name);
      evidence.volumes[target] = name;
    }

    // 3. Boot with the image's own entrypoint unless the spec replaces it, and wait for readiness.
    const timeoutMs = (options.timeoutSeconds ?? spec.timeoutSeconds) * 1000;
    const readiness = new SpecReadiness(spec.ready, timeoutMs, options.signal);
    const container = new SmokeContainer(imageId)
      .withName(`slipway-smoke-${imageName}-${runId}`)
      .withLabels({ [SMOKE_LABEL]: runId, [LABELS.image]: imageName })
      .withEnvironment(spec.boot.env)
      .withBindMounts(
        Object.entries(evidence.volumes).map(([target, source]) => ({ source, target, mode: 'rw' as const })),
      )
      .withWaitStrategy(readiness)
      .withPullPolicy(NEVER_PULL)
      // No reaper: smoke removes what it creates itself (and the reaper image cannot be pulled offline).
      .withAutoCleanup(false);
    if (spec.boot.entrypoint) container.withEntrypoint(spec.boot.entrypoint);
    if (spec.boot.command) container.withCommand(spec.boot.command);
    if (spec.boot.user) container.withUser(spec.boot.user);
    let containerId: string;
    try {
      containerId = (await container.start()).getId();
    } catch (err) {
      created.containerId = container.createdId;
      evidence.containerId = container.createdId ?? null;
      if (err instanceof ReadinessFailure) {
        evidence.logTail = tailLines(readiness.logText, LOG_TAIL);
        evidence.exitCode = readiness.exitCode;
        return { code: err.code, message: err.message };
      }
      throw err;
    } finally {
      created.containerId = container.createdId;
    }
    evidence.containerId = containerId;
    evidence.readiness = readiness.readyAfter;
    sink({
      kind: 'log',
      stage: 'smoke',
      level: 'info',
      subject: imageName,
      message: `ready: ${readiness.readyAfter}`,
    });

    // 4. Every assertion, in order, against the running container.
    const c = docker.getContainer(containerId);
    const archives = new Map<string, Promise<ArchiveEntry[] | null>>();
    const ctx = {
      container: c,
      templates,
      execTimeoutMs: Math.max(10_000, timeoutMs),
      listings: evidence.listings,
    };
    for (const a of spec.assertions) {
      options.signal?.throwIfAborted();
      const result = await runAssertion(a, ctx, archives);
      assertions.push(result);
      sink({
        kind: 'log',
        stage: 'smoke',
        level: result.passed ? 'info' : 'error',
        subject: imageName,
        message: `${result.passed ? 'PASS' : 'FAIL'} ${result.name}: ${result.message}`,
      });
    }

    // 5. Evidence, and a last look: an agent that died while being checked is not serving.
    const info = await c.inspect();
    evidence.logTail = tailLines(await logsOf(c), LOG_TAIL);
    const failed = assertions.filter((r) => !r.passed);
    if (failed.length > 0) {
      return {
        code: 'assertion-failed',
        message: `${failed.length} of ${assertions.length} assertions failed: ${failed.map((r) => r.name).join('; ')}`,
      };
    }
    if (!info.State.Running) {
      evidence.exitCode = info.State.ExitCode;
      return {
        code: 'exited-early',
        message: `the container exited with code ${info.State.ExitCode} after it was ready, while it was being checked`,
      };
    }
    return undefined;
  }
}

/** Removes the run's container and volumes; returns what could not be removed. */
async function cleanup(
  docker: Dockerode,
  created: { containerId: string | undefined; volumes: string[] },
  sink: EventSink,
  imageName: string,
): Promise<string[]> {
  const leftovers: string[] = [];
  const status = (err: unknown) => (err as { statusCode?: number } | null)?.statusCode;
  if (created.containerId) {
    const id = created.containerId;
    for (let attempt = 0; ; attempt++) {
      try {
        await docker.getContainer(id).remove({ force: true, v: true });
        break;
      } catch (err) {
        if (status(err) === 404) break;
        // 409: a removal testcontainers started after a failed readiness is still in progress.
        if (status(err) === 409 && attempt < 20) {
          await sleep(250);
          continue;
        }
        leftovers.push(`container ${id.slice(0, 12)} (${engineMessage(err)})`);
        break;
      }
    }
    created.containerId = undefined;
  }
  for (const v of created.volumes.splice(0)) {
    for (let attempt = 0; ; attempt++) {
      try {
        await docker.getVolume(v).remove();
        break;
      } catch (err) {
        if (status(err) === 404) break;
        if (status(err) === 409 && attempt < 20) {
          await sleep(250);
          continue;
        }
        leftovers.push(`volume ${v} (${engineMessage(err)})`);
        break;
      }
    }
  }
  sink({
    kind: 'log',
    stage: 'smoke',
    level: 'debug',
    subject: imageName,
    message: 'removed the smoke container and volumes',
  });
  return leftovers;
}
