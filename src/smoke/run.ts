import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isUnreachable, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { ImageRef } from '../core/image-ref.js';
import { LABELS } from '../core/labels.js';
import { Redactor } from '../core/redact.js';
import type { ArchiveEntry } from '../engine/container-archive.js';
import { type EngineAuth, type ImageEngine, PullError } from '../engine/image-engine.js';
import type { Readiness, SmokeSpec } from '../manifest/schema.js';
import { type ExpectedTemplate, runAssertion } from './assertions.js';
import { tailLines } from './container-io.js';
import { templatesAsserted, templatesFromLabels } from './expected.js';
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
  /** The image engine that pulls, boots and inspects the image. */
  readonly engine: ImageEngine;
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
}

const LOG_TAIL = 50;
const POLL_MS = 250;

/** Why a run failed, as the report states it. */
interface Failure {
  readonly code: SmokeFailureCode;
  readonly message: string;
}

/** Describes a readiness condition for messages. */
export function describeReadiness(ready: Readiness): string {
  if ('log' in ready) return `log line matching /${ready.log}/`;
  if ('file' in ready) return `file ${ready.file} to appear`;
  return `"${ready.exec.join(' ')}" to exit 0`;
}

/** Everything one smoke run shares between its steps, and what it created (for cleanup). */
interface SmokeRun {
  readonly options: SmokeOptions;
  readonly engine: ImageEngine;
  readonly sink: EventSink;
  readonly imageName: string;
  readonly runId: string;
  readonly redactor: Redactor;
  readonly startedAt: Date;
  readonly evidence: { -readonly [K in keyof SmokeEvidence]: SmokeEvidence[K] };
  readonly assertions: AssertionResult[];
  digest: string | null;
  containerId: string | undefined;
  readonly volumes: string[];
}

/**
 * Boots the image and proves its identity: pulls it (post-push), mounts fresh empty volumes,
 * starts it with its own entrypoint, waits for readiness, runs every assertion, copies the
 * evidence out, and always removes the container and volumes. Fails closed: a missing spec,
 * an empty assertion list, an unreachable engine or registry, an early exit and a timeout are
 * failures. A container that is not running when readiness is checked or when the run ends is
 * `exited-early`, even after its ready line: an agent that exits is not serving. Returns the
 * report; throws only for a refused option, an invalid spec, or an abort.
 */
export async function runSmoke(options: SmokeOptions): Promise<SmokeReport> {
  refuseSkipInCi(options);
  const run = startRun(options);
  const unusable = specProblem(options);
  if (unusable) return finish(run, unusable.failure, unusable.skipped);
  const spec = options.spec as SmokeSpec;
  checkRegexes(options.imageName, spec);
  run.sink({ kind: 'step-start', stage: 'smoke', subject: run.imageName, message: `smoke ${options.image}` });
  const silent = await pingEngine(run);
  if (silent) return finish(run, silent);

  let failure: Failure | undefined;
  try {
    failure = await smokeContainer(run, spec);
  } catch (err) {
    failure = await failureOf(run, err);
  }
  await collectEvidence(run);
  await cleanup(run);
  return finish(run, failure);
}

/** The pipeline of one run: image -> volumes -> boot -> readiness -> assertions -> last look. */
async function smokeContainer(run: SmokeRun, spec: SmokeSpec): Promise<Failure | undefined> {
  const image = await resolveImage(run);
  if ('failure' in image) return image.failure;
  run.evidence.imageId = image.id;
  run.options.signal?.throwIfAborted();
  // Templates the caller has no expectation for (no receipt here) fall back to the digests
  // the build wrote into the image's labels from its staging receipt.
  const templates = {
    ...templatesFromLabels(image.labels, templatesAsserted(spec)),
    ...run.options.templates,
  };
  await createVolumes(run, spec);
  const containerId = await boot(run, spec, image.id);
  const timeoutMs = (run.options.timeoutSeconds ?? spec.timeoutSeconds) * 1000;
  const notReady = await awaitReady(run, containerId, spec.ready, timeoutMs);
  if (notReady) return notReady;
  await runAssertions(run, spec, containerId, templates, timeoutMs);
  return verdict(run, containerId);
}

function refuseSkipInCi(options: SmokeOptions): void {
  if (options.allowSkip && options.ci) {
    throw new SlipwayError('USAGE', `refusing to allow a smoke skip in CI (image ${options.imageName})`, {
      resource: options.imageName,
      hint: 'a skipped smoke run is not a verdict: add a smoke spec to the image in manifest.json instead of --allow-skip',
    });
  }
}

function startRun(options: SmokeOptions): SmokeRun {
  const runId = randomBytes(6).toString('hex');
  return {
    options,
    engine: options.engine,
    sink: options.sink ?? silentSink,
    imageName: options.imageName,
    runId,
    redactor: new Redactor().add(options.pull?.auth.password),
    startedAt: new Date(),
    evidence: {
      runId,
      imageId: null,
      containerId: null,
      volumes: {},
      logTail: [],
      exitCode: null,
      readiness: null,
      listings: {},
    },
    assertions: [],
    digest: null,
    containerId: undefined,
    volumes: [],
  };
}

/** A missing spec (a failure, or a skip when allowed) or an empty assertion list, before anything boots. */
function specProblem(options: SmokeOptions): { failure: Failure; skipped: boolean } | undefined {
  const { spec, imageName } = options;
  if (!spec) {
    const message = `image ${imageName} has no smoke spec in the manifest, so nothing proves its identity`;
    return { failure: { code: 'no-spec', message }, skipped: options.allowSkip ?? false };
  }
  if (spec.assertions.length === 0) {
    return {
      failure: {
        code: 'no-assertions',
        message: `the smoke spec of ${imageName} has no assertions; an empty list proves nothing and fails`,
      },
      skipped: false,
    };
  }
  return undefined;
}

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

/** The engine's own message: the cause of a translated engine error (the raw socket or API message). */
function engineMessage(err: unknown): string {
  if (err instanceof SlipwayError && err.cause !== undefined) return engineMessage(err.cause);
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}

function isEngineUnreachable(err: unknown): boolean {
  return (err instanceof SlipwayError && err.code === 'ENGINE_UNREACHABLE') || isUnreachable(err);
}

async function pingEngine(run: SmokeRun): Promise<Failure | undefined> {
  try {
    await run.engine.ping();
    return undefined;
  } catch (err) {
    return {
      code: 'engine-unreachable',
      message: `the Docker engine does not answer (${run.redactor.redact(engineMessage(err))}); start it, or point DOCKER_HOST at it`,
    };
  }
}

/**
 * What a thrown error means for the run. An abort and Slipway's own errors are rethrown after
 * cleanup; an engine that stopped answering or refused a call is a failure of the run.
 */
async function failureOf(run: SmokeRun, err: unknown): Promise<Failure> {
  if (run.options.signal?.aborted) {
    await cleanup(run);
    throw new SlipwayError(
      'INTERRUPTED',
      `smoke of ${run.imageName} interrupted; its container and volumes were removed`,
      { resource: run.imageName, cause: err },
    );
  }
  if (isEngineUnreachable(err)) {
    return {
      code: 'engine-unreachable',
      message: `the Docker engine stopped answering: ${run.redactor.redact(engineMessage(err))}`,
    };
  }
  if (err instanceof SlipwayError && err.code !== 'ENGINE_FAILED') {
    await cleanup(run);
    throw err;
  }
  return { code: 'start-failed', message: run.redactor.redact(engineMessage(err)) };
}

/** The repository digest the engine recorded for `name` (RepoDigests holds `name@sha256:...`). */
function repoDigestFor(repoDigests: readonly string[], name: string): string | null {
  for (const rd of repoDigests) {
    const at = rd.lastIndexOf('@');
    if (at > 0 && rd.slice(0, at) === name) return rd.slice(at + 1);
  }
  return null;
}

type ResolvedImage = { id: string; labels: Readonly<Record<string, string>> | null } | { failure: Failure };

/** The image, exactly as pushed (pulled by reference) or as built (a local id). */
async function resolveImage(run: SmokeRun): Promise<ResolvedImage> {
  const { options, engine } = run;
  if (!options.pull) {
    const info = await engine.inspectImage(options.image);
    if (!info) {
      return {
        failure: {
          code: 'image-not-found',
          message: `no local image ${options.image} (build it first, or pass a pushed reference to pull)`,
        },
      };
    }
    return { id: info.id, labels: info.labels };
  }
  const ref = ImageRef.parse(options.image);
  run.sink({ kind: 'log', stage: 'smoke', level: 'info', subject: run.imageName, message: `pulling ${ref}` });
  try {
    await engine.pull(ref, options.pull.auth, { redact: (t) => run.redactor.redact(t) });
  } catch (err) {
    if (!(err instanceof PullError)) throw err;
    const hint =
      err.kind === 'registry-unreachable'
        ? ' (is the registry up, and the engine allowed to reach it?)'
        : / unauthorized|denied|authentication required/i.test(err.message)
          ? ' (check the registry credentials)'
          : '';
    return { failure: { code: err.kind, message: `cannot pull ${ref}: ${err.message}${hint}` } };
  }
  options.signal?.throwIfAborted();
  const info = await engine.inspectImage(ref.toString());
  run.digest = ref.digest ?? (info ? repoDigestFor(info.repoDigests, ref.name) : null);
  if (!info || !run.digest) {
    return {
      failure: {
        code: 'pull-failed',
        message: info
          ? `pulled ${ref}, but the engine recorded no registry digest for ${ref.name}`
          : `pulled ${ref}, but the engine has no such image afterwards`,
      },
    };
  }
  return { id: info.id, labels: info.labels };
}

/**
 * Fresh empty volumes where provisioning mounts them: the engine copies the image's directory
 * (content and ownership) into a new named volume, as it does in production.
 */
async function createVolumes(run: SmokeRun, spec: SmokeSpec): Promise<void> {
  for (const [i, target] of spec.boot.emptyVolumes.entries()) {
    const name = `slipway-smoke-${run.runId}-${i}`;
    await run.engine.createVolume(name, { [SMOKE_LABEL]: run.runId, [LABELS.image]: run.imageName });
    run.volumes.push(name);
    run.evidence.volumes[target] = name;
  }
}

/** Creates and starts the container with the image's own entrypoint unless the spec replaces it. */
async function boot(run: SmokeRun, spec: SmokeSpec, imageId: string): Promise<string> {
  const { boot: b } = spec;
  const id = await run.engine.createContainer({
    name: `slipway-smoke-${run.imageName}-${run.runId}`,
    image: imageId,
    labels: { [SMOKE_LABEL]: run.runId, [LABELS.image]: run.imageName },
    env: b.env,
    volumes: run.evidence.volumes,
    ...(b.entrypoint ? { entrypoint: b.entrypoint } : {}),
    ...(b.command ? { command: b.command } : {}),
    ...(b.user ? { user: b.user } : {}),
  });
  run.containerId = id;
  run.evidence.containerId = id;
  await run.engine.startContainer(id);
  return id;
}

/**
 * Polls the spec's readiness until it holds or the time is up. Tells a container that exited
 * (exited-early, with its exit code and last log line) from one still starting, and never
 * treats a timeout as ready.
 */
async function awaitReady(
  run: SmokeRun,
  containerId: string,
  ready: Readiness,
  timeoutMs: number,
): Promise<Failure | undefined> {
  const { engine, options } = run;
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  const what = describeReadiness(ready);
  const re = 'log' in ready ? new RegExp(ready.log, 'm') : undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const state = await engine.inspectContainer(containerId);
    if (!state.running) {
      const log = await engine.logs(containerId);
      run.evidence.exitCode = state.exitCode;
      const last = tailLines(log, 1)[0];
      const oom = state.oomKilled ? ' (OOM-killed)' : '';
      // Its ready line does not make an exited container ready: an agent that exits is not serving.
      if (re?.test(log)) {
        return {
          code: 'exited-early',
          message: `the container exited with code ${state.exitCode}${oom} right after its ${what}; an agent that exits is not serving`,
        };
      }
      return {
        code: 'exited-early',
        message: `the container exited with code ${state.exitCode}${oom} before it was ready (waiting for ${what})${last ? `; last log line: "${last}"` : '; it wrote no log'}`,
      };
    }
    if (await readinessHolds(run, containerId, ready, re, Math.max(1000, deadline - Date.now()))) {
      run.evidence.readiness = `${what} after ${((Date.now() - t0) / 1000).toFixed(1)}s`;
      run.sink({
        kind: 'log',
        stage: 'smoke',
        level: 'info',
        subject: run.imageName,
        message: `ready: ${run.evidence.readiness}`,
      });
      return undefined;
    }
    if (Date.now() >= deadline) {
      const log = await engine.logs(containerId);
      return {
        code: 'readiness-timeout',
        message: `the container was not ready within ${Math.round(timeoutMs / 1000)}s: no ${what}${tailLines(log, 1).length === 0 ? ' (it wrote no log)' : ''}`,
      };
    }
    await sleep(POLL_MS, undefined, options.signal ? { signal: options.signal } : {});
  }
}

async function readinessHolds(
  run: SmokeRun,
  containerId: string,
  ready: Readiness,
  re: RegExp | undefined,
  budgetMs: number,
): Promise<boolean> {
  if (re) return re.test(await run.engine.logs(containerId));
  if ('file' in ready) return (await run.engine.statPath(containerId, ready.file)) !== null;
  if ('exec' in ready) {
    try {
      const probe = await run.engine.exec(containerId, ready.exec, { timeoutMs: Math.min(budgetMs, 30_000) });
      return probe.exitCode === 0;
    } catch {
      // A readiness probe that hangs or cannot start is "not ready yet", not a verdict.
      return false;
    }
  }
  return false;
}

/** Every assertion, in order, against the running container. */
async function runAssertions(
  run: SmokeRun,
  spec: SmokeSpec,
  containerId: string,
  templates: Readonly<Record<string, ExpectedTemplate>>,
  timeoutMs: number,
): Promise<void> {
  const archives = new Map<string, Promise<ArchiveEntry[] | null>>();
  const ctx = {
    engine: run.engine,
    containerId,
    templates,
    execTimeoutMs: Math.max(10_000, timeoutMs),
    listings: run.evidence.listings,
  };
  for (const a of spec.assertions) {
    run.options.signal?.throwIfAborted();
    const result = await runAssertion(a, ctx, archives);
    run.assertions.push(result);
    run.sink({
      kind: 'log',
      stage: 'smoke',
      level: result.passed ? 'info' : 'error',
      subject: run.imageName,
      message: `${result.passed ? 'PASS' : 'FAIL'} ${result.name}: ${result.message}`,
    });
  }
}

/**
 * The last look after the assertions. A container that stopped is exited-early whatever the
 * assertions said (an agent that died while being checked is not serving, and checks against
 * a stopped container are not evidence); otherwise any failed assertion fails the run.
 */
async function verdict(run: SmokeRun, containerId: string): Promise<Failure | undefined> {
  const state = await run.engine.inspectContainer(containerId);
  if (!state.running) {
    run.evidence.exitCode = state.exitCode;
    return {
      code: 'exited-early',
      message: `the container exited with code ${state.exitCode} after it was ready, while it was being checked`,
    };
  }
  const failed = run.assertions.filter((r) => !r.passed);
  if (failed.length > 0) {
    return {
      code: 'assertion-failed',
      message: `${failed.length} of ${run.assertions.length} assertions failed: ${failed.map((r) => r.name).join('; ')}`,
    };
  }
  return undefined;
}

/** Copies the container's log tail (and its exit code, once stopped) into the evidence, whatever the outcome. */
async function collectEvidence(run: SmokeRun): Promise<void> {
  if (!run.containerId) return;
  try {
    run.evidence.logTail = tailLines(await run.engine.logs(run.containerId), LOG_TAIL);
    const state = await run.engine.inspectContainer(run.containerId);
    if (!state.running) run.evidence.exitCode = state.exitCode;
  } catch {
    // Evidence is best effort: the verdict already stands, and the engine may be the failure.
  }
}

/** Removes the run's container and volumes; warns about what could not be removed. */
async function cleanup(run: SmokeRun): Promise<void> {
  const leftovers: string[] = [];
  if (run.containerId) {
    const id = run.containerId;
    run.containerId = undefined;
    await run.engine
      .removeContainer(id, { volumes: true })
      .catch((err: unknown) => leftovers.push(`container ${id.slice(0, 12)} (${engineMessage(err)})`));
  }
  for (const v of run.volumes.splice(0)) {
    await run.engine
      .removeVolume(v)
      .catch((err: unknown) => leftovers.push(`volume ${v} (${engineMessage(err)})`));
  }
  run.sink({
    kind: 'log',
    stage: 'smoke',
    level: 'debug',
    subject: run.imageName,
    message: 'removed the smoke container and volumes',
  });
  if (leftovers.length > 0) {
    run.sink({
      kind: 'log',
      stage: 'smoke',
      level: 'warn',
      subject: run.imageName,
      message: `could not remove ${leftovers.join(', ')}`,
    });
  }
}

/** The report, announced as the step's outcome. */
function finish(run: SmokeRun, failure?: Failure, skipped = false): SmokeReport {
  const { sink, imageName, assertions } = run;
  const report: SmokeReport = {
    image: run.options.image,
    imageName,
    digest: run.digest,
    specDigest: specDigest(run.options.spec),
    passed: failure === undefined && !skipped,
    skipped,
    startedAt: run.startedAt.toISOString(),
    durationMs: Date.now() - run.startedAt.getTime(),
    assertions,
    ...(failure ? { failure } : {}),
    evidence: run.evidence,
  };
  if (skipped) {
    sink({
      kind: 'step-done',
      stage: 'smoke',
      subject: imageName,
      message: failure?.message ?? '',
      skipped: true,
    });
  } else if (failure) {
    sink({
      kind: 'step-failed',
      stage: 'smoke',
      subject: imageName,
      message: `[${failure.code}] ${failure.message}`,
    });
  } else {
    sink({
      kind: 'step-done',
      stage: 'smoke',
      subject: imageName,
      message: `${assertions.length}/${assertions.length} assertions passed`,
    });
  }
  return report;
}
