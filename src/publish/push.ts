import { type ErrorDetail, messageOf, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { ImageRef } from '../core/image-ref.js';
import { LABELS } from '../core/labels.js';
import { Redactor } from '../core/redact.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../core/timeouts.js';
import type { EngineAuth, ImageEngine, ImageInfo } from '../engine/image-engine.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { registryWithDeadline } from './bounded-registry.js';
import type { Registry, RepositorySettings } from './registry.js';

/** Options of {@link pushImages}. */
export interface PushOptions {
  /** The engine holding the built images; it pushes them. */
  readonly engine: ImageEngine;
  /** Create missing repositories (ECR) instead of failing before anything is pushed. */
  readonly createRepos?: boolean;
  /** Settings for repositories created with `createRepos` (the manifest's `publish.ecr`). */
  readonly repositorySettings: RepositorySettings;
  readonly sink?: EventSink;
  readonly signal?: AbortSignal;
  /** Scrubs credentials from events and errors (the registry's own redactor, when shared). */
  readonly redactor?: Redactor;
  /**
   * Push and verify the immutable tags only; the caller moves the moving tags later with
   * {@link moveMovingTags} (e.g. after smoke passed on the pushed digests).
   */
  readonly holdMovingTags?: boolean;
  /**
   * Overwrite an immutable tag that already names an image built from other inputs (logged as a
   * warning naming both digests). Without it such a push is refused with IMMUTABLE_TAG_CONFLICT
   * before anything is pushed.
   */
  readonly overwriteImmutable?: boolean;
  /** Bounds the rollback of moving tags after a failure (one operation deadline in all). */
  readonly timeouts?: Timeouts;
}

/** Options of {@link moveMovingTags}. */
export type MoveOptions = Pick<PushOptions, 'sink' | 'signal' | 'redactor' | 'timeouts'>;

/** What was published for one image. */
export interface PushedImage {
  readonly name: string;
  /** The full image name, e.g. `127.0.0.1:5000/prefix/molecule-ai/platform`. */
  readonly repository: string;
  /** The manifest digest every tag of the image now resolves to. */
  readonly digest: string;
  /** The tags that resolve to the digest: immutable first, then moving (once moved). */
  readonly tags: string[];
  /** Tags written by this run (pushed, or moved by manifest copy). */
  readonly pushed: string[];
  /** Tags that already resolved to the image. */
  readonly skipped: string[];
}

/** The result of {@link pushImages}. */
export interface PushResult {
  readonly registry: string;
  readonly images: PushedImage[];
}

interface Progress {
  readonly image: PlannedImage;
  /** The local image ID the build produced. */
  readonly localId: string;
  readonly ref: ImageRef;
  digest: string | undefined;
  readonly pushed: string[];
  readonly skipped: string[];
  /** What each immutable tag names in the registry, read before anything is pushed. */
  readonly published: Map<string, Published>;
  /** The digest of a published image built from the same inputs, which this run reuses. */
  reuse: string | undefined;
}

/** What the registry holds under one immutable tag, compared with the local image. */
type Published =
  | { readonly kind: 'absent' }
  /** The local image itself. */
  | { readonly kind: 'same'; readonly digest: string }
  /** Another image built from the same inputs (equal `dev.slipway.input-digest` labels). */
  | { readonly kind: 'same-inputs'; readonly digest: string; readonly inputDigest: string }
  /** An image built from other inputs: a conflict, unless the run may overwrite immutable tags. */
  | {
      readonly kind: 'other';
      readonly digest: string;
      readonly configDigest: string | null;
      readonly inputDigest: string | null;
    };

/**
 * Checks (or, with `createRepos`, creates) the repository of every image in the plan, so a
 * missing one fails before anything is built or pushed.
 */
export async function prepareRepositories(
  plan: Plan,
  registry: Registry,
  options: Pick<PushOptions, 'createRepos' | 'repositorySettings' | 'signal'>,
): Promise<void> {
  for (const image of plan.images) {
    if (options.signal?.aborted)
      throw new SlipwayError('INTERRUPTED', 'push interrupted; nothing was pushed');
    await registry.ensureRepository(image.repository, {
      create: options.createRepos ?? false,
      settings: options.repositorySettings,
    });
  }
}

/**
 * Publishes the plan's images: every repository is checked first, then the immutable tags of
 * every image are pushed and verified (bases first), and only then do the moving tags move, by
 * manifest copy. A failure anywhere leaves every moving tag where it was.
 */
export async function pushImages(
  plan: Plan,
  built: Readonly<Record<string, { readonly id: string }>>,
  registry: Registry,
  options: PushOptions,
): Promise<PushResult> {
  const run = startPush(registry, options);
  const progress = planProgress(plan, built, registry);
  await checkRepositories(plan, run, options);
  await pushImmutableTags(progress, run);
  const immutable = immutableResult(registry, progress);
  if (options.holdMovingTags) return immutable;
  run.checkAbort();
  return moveMovingTags(plan, immutable, registry, {
    sink: run.sink,
    redactor: run.redactor,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The state one push run shares between its steps. */
interface PushRun {
  readonly registry: Registry;
  readonly engine: ImageEngine;
  readonly sink: EventSink;
  readonly redactor: Redactor;
  /** True once anything was written to the registry (an unreachable registry is then a failed push). */
  changed: boolean;
  /** Local tags this run added to push under; removed again at the end. */
  readonly createdTags: string[];
  /** Overwrite immutable tags that name images built from other inputs (logged). */
  readonly overwriteImmutable: boolean;
  checkAbort(): void;
  failure(err: unknown, where: string, state: string): SlipwayError;
}

function startPush(registry: Registry, options: PushOptions): PushRun {
  const run: PushRun = {
    registry,
    engine: options.engine,
    sink: options.sink ?? silentSink,
    redactor: options.redactor ?? new Redactor(),
    changed: false,
    createdTags: [],
    overwriteImmutable: options.overwriteImmutable ?? false,
    checkAbort() {
      if (options.signal?.aborted) {
        throw new SlipwayError('INTERRUPTED', 'push interrupted; moving tags were not changed');
      }
    },
    failure: (err, where, state) =>
      wrapFailure(err, where, state, { changed: run.changed, sink: run.sink, redactor: run.redactor }),
  };
  return run;
}

/** One entry per planned image; refuses an image that was not built or has no immutable tag. */
function planProgress(
  plan: Plan,
  built: Readonly<Record<string, { readonly id: string }>>,
  registry: Registry,
): Progress[] {
  return plan.images.map((image) => {
    const local = built[image.name];
    if (!local) {
      throw new SlipwayError('PUSH_FAILED', `image ${image.name} was not built; nothing was pushed`, {
        resource: image.name,
        hint: 'build every image of the plan before pushing',
      });
    }
    if (image.immutableTags.length === 0) {
      throw new SlipwayError('PLAN_INVALID', `image ${image.name} has no immutable tag to push`, {
        resource: image.name,
      });
    }
    return {
      image,
      localId: local.id,
      ref: registry.imageName(image.repository),
      digest: undefined,
      pushed: [],
      skipped: [],
      published: new Map(),
      reuse: undefined,
    };
  });
}

/** Every repository first: a missing one fails before a single layer moves. */
async function checkRepositories(plan: Plan, run: PushRun, options: PushOptions): Promise<void> {
  try {
    await prepareRepositories(plan, run.registry, options);
  } catch (err) {
    const e = err as SlipwayError;
    throw run.failure(err, e.resource ?? run.registry.url, 'nothing was pushed');
  }
}

/**
 * Reads what every immutable tag already names (refusing conflicts before anything moves), then
 * pushes and verifies every immutable tag, bases first; always removes the local tags it added.
 */
async function pushImmutableTags(progress: readonly Progress[], run: PushRun): Promise<void> {
  const locals = new Map<Progress, ImageInfo>();
  for (const p of progress) {
    run.checkAbort();
    try {
      const local = await localImage(run, p);
      locals.set(p, local);
      await readPublished(run, p, local);
    } catch (err) {
      throw run.failure(err, p.image.name, 'nothing was pushed; no tag was changed');
    }
  }
  refuseConflicts(progress, locals, run);
  const auth = await run.registry.engineAuth();
  run.redactor.add(auth.password);
  try {
    for (const p of progress) {
      for (const tag of p.image.immutableTags) {
        run.checkAbort();
        const target = p.ref.withTag(tag);
        try {
          // Every tag is pushed (a short-circuiting `??=` would skip the later ones).
          const digest = await pushTag(run, p, locals.get(p) as ImageInfo, tag, target, auth);
          p.digest ??= digest;
        } catch (err) {
          throw run.failure(err, `${p.image.name} (${target})`, 'no moving tag was changed');
        }
      }
    }
  } finally {
    await removeCreatedTags(run);
  }
}

/** The local image the build produced. */
async function localImage(run: PushRun, p: Progress): Promise<ImageInfo> {
  const local = await run.engine.inspectImage(p.localId);
  if (!local) {
    throw new SlipwayError('PUSH_FAILED', `the engine has no image ${p.localId}`, {
      resource: p.localId,
      hint: 'the built image was removed; build again',
    });
  }
  return local;
}

/**
 * Records what each immutable tag of `p` names: nothing, the local image (known by its repository
 * digest, or by the manifest's config digest), an image built from the same inputs, or another image.
 */
async function readPublished(run: PushRun, p: Progress, local: ImageInfo): Promise<void> {
  const { registry } = run;
  const repository = p.image.repository;
  for (const tag of p.image.immutableTags) {
    const remote = await registry.resolve(repository, tag);
    if (remote === null) {
      p.published.set(tag, { kind: 'absent' });
      continue;
    }
    if (local.repoDigests.includes(`${p.ref.name}@${remote}`)) {
      p.published.set(tag, { kind: 'same', digest: remote });
      continue;
    }
    const details = await registry.imageDetails(repository, remote);
    const configDigest = details?.configDigest ?? null;
    const inputs = local.labels[LABELS.inputDigest];
    if (configDigest === local.id) {
      p.published.set(tag, { kind: 'same', digest: remote });
    } else if (inputs !== undefined && details?.labels[LABELS.inputDigest] === inputs) {
      p.published.set(tag, { kind: 'same-inputs', digest: remote, inputDigest: inputs });
      p.reuse ??= remote;
    } else {
      p.published.set(tag, {
        kind: 'other',
        digest: remote,
        configDigest,
        inputDigest: details?.labels[LABELS.inputDigest] ?? null,
      });
    }
  }
}

/**
 * Refuses, before anything is pushed, every immutable tag that names an image built from other
 * inputs; with `overwriteImmutable` each one is logged instead and overwritten by its push.
 */
function refuseConflicts(
  progress: readonly Progress[],
  locals: ReadonlyMap<Progress, ImageInfo>,
  run: PushRun,
): void {
  const conflicts: Array<ErrorDetail & { where: string }> = [];
  for (const p of progress) {
    const local = locals.get(p) as ImageInfo;
    for (const [tag, published] of p.published) {
      if (published.kind !== 'other') continue;
      const target = p.ref.withTag(tag);
      const message =
        `${target} already names ${published.digest} (image ${published.configDigest ?? 'unknown'}, ` +
        `inputs ${published.inputDigest ?? 'unlabelled'}), not the local image ${local.id} ` +
        `(inputs ${local.labels[LABELS.inputDigest] ?? 'unlabelled'})`;
      conflicts.push({ where: `${p.image.name} (${target})`, at: target.toString(), message });
    }
  }
  if (conflicts.length === 0) return;
  if (run.overwriteImmutable) {
    for (const c of conflicts) {
      run.sink({
        kind: 'log',
        stage: 'push',
        level: 'warn',
        subject: c.where,
        message: `overwriting immutable tag (--overwrite-immutable): ${c.message}`,
      });
    }
    return;
  }
  const first = conflicts[0] as ErrorDetail & { where: string };
  const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more immutable tag(s))` : '';
  throw run.failure(
    new SlipwayError('IMMUTABLE_TAG_CONFLICT', `immutable tag ${first.message}${more}`, {
      resource: first.at,
      hint: 'an immutable tag is never rewritten: publish from a new commit (--sha), or, if the published image must be replaced, rerun with --overwrite-immutable (logged)',
      details: conflicts.map(({ at, message }) => ({ at, message })),
    }),
    first.where,
    'nothing was pushed; no tag was changed',
  );
}

/**
 * Publishes one immutable tag and returns the digest it names: nothing moves when it already
 * names the local image or one built from the same inputs; a missing tag is pointed at a reused
 * image by manifest copy, else the engine pushes the local image.
 */
async function pushTag(
  run: PushRun,
  p: Progress,
  local: ImageInfo,
  tag: string,
  target: ImageRef,
  auth: EngineAuth,
): Promise<string> {
  const { engine, sink, redactor } = run;
  const subject = p.image.name;
  const published = p.published.get(tag) ?? { kind: 'absent' };
  if (published.kind === 'same' || published.kind === 'same-inputs') {
    p.skipped.push(tag);
    const why =
      published.kind === 'same'
        ? 'already present'
        : `already published from the same inputs (${published.inputDigest}); reusing it, nothing pushed`;
    sink({
      kind: 'step-done',
      stage: 'push',
      subject,
      message: `${target}@${published.digest} ${why}`,
      skipped: true,
    });
    return published.digest;
  }
  run.changed = true;
  if (published.kind === 'absent' && p.reuse !== undefined) {
    // Another immutable tag of this image reuses a published image: point this one at it too.
    sink({ kind: 'step-start', stage: 'push', subject, message: `tagging ${target} as ${p.reuse}` });
    await run.registry.putTag(p.image.repository, p.reuse, tag);
    await verifyServed(run, p, tag, target, p.reuse);
    p.pushed.push(tag);
    sink({ kind: 'step-done', stage: 'push', subject, message: `${target}@${p.reuse}` });
    return p.reuse;
  }
  sink({ kind: 'step-start', stage: 'push', subject, message: `pushing ${target}` });
  if (!local.repoTags.includes(target.toString())) {
    await engine.tag(p.localId, target);
    run.createdTags.push(target.toString());
  }
  const { digest } = await engine.push(
    target,
    auth,
    (line) => sink({ kind: 'output', stage: 'push', subject, line: redactor.redact(line) }),
    (layer) => sink({ kind: 'progress', stage: 'push', subject, ...layer }),
  );
  await verifyServed(run, p, tag, target, digest);
  p.pushed.push(tag);
  const overwrote = published.kind === 'other' ? ` (overwrote ${published.digest})` : '';
  sink({ kind: 'step-done', stage: 'push', subject, message: `${target}@${digest}${overwrote}` });
  return digest;
}

/** Refuses a push whose digest the registry does not serve under the tag afterwards. */
async function verifyServed(
  run: PushRun,
  p: Progress,
  tag: string,
  target: ImageRef,
  digest: string,
): Promise<void> {
  const served = await run.registry.resolve(p.image.repository, tag);
  if (served !== digest) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `the engine pushed ${digest} but the registry serves ${served ?? 'nothing'} for ${target}`,
      {
        resource: target.toString(),
        hint: 'another writer raced this push, or a proxy rewrote the manifest',
      },
    );
  }
}

/** Removes the local tags the run added (never an image's last tag). */
async function removeCreatedTags(run: PushRun): Promise<void> {
  for (const tag of run.createdTags.splice(0)) {
    try {
      const image = await run.engine.inspectImage(tag);
      // Removing an image's last tag would delete the image itself; the caller still needs it.
      if (image && image.repoTags.length > 1) await run.engine.removeTag(tag);
    } catch (err) {
      run.sink({
        kind: 'log',
        stage: 'push',
        level: 'warn',
        message: `could not remove local tag ${tag}: ${messageOf(err)}`,
      });
    }
  }
}

/** The immutable-tags-only result. */
function immutableResult(registry: Registry, progress: readonly Progress[]): PushResult {
  return {
    registry: registry.url,
    images: progress.map((p) => ({
      name: p.image.name,
      repository: p.ref.name,
      digest: p.digest as string,
      tags: [...p.image.immutableTags],
      pushed: p.pushed,
      skipped: p.skipped,
    })),
  };
}

/** Re-raises `err` naming where it happened and the state the registry was left in. */
function wrapFailure(
  err: unknown,
  where: string,
  state: string,
  ctx: { changed: boolean; sink: EventSink; redactor: Redactor },
): SlipwayError {
  const e =
    err instanceof SlipwayError ? err : new SlipwayError('PUSH_FAILED', messageOf(err), { cause: err });
  // Unreachable from the start is a missing service (exit 3); after a partial publish it is a failed push.
  const code = e.code === 'REGISTRY_UNREACHABLE' && ctx.changed ? 'PUSH_FAILED' : e.code;
  const message = ctx.redactor.redact(`${where}: ${e.message}; ${state}`);
  ctx.sink({ kind: 'step-failed', stage: 'push', subject: where, message });
  return new SlipwayError(code, message, {
    resource: e.resource ?? where,
    ...(e.hint ? { hint: ctx.redactor.redact(e.hint) } : {}),
    details: e.details,
    cause: e,
  });
}

interface Move {
  readonly image: PushedImage;
  readonly repository: string;
  readonly ref: ImageRef;
  readonly tag: string;
  previous: string | null;
}

/**
 * Moves every image's moving tags to the digest its immutable tags were pushed at, by manifest
 * copy. All or nothing: the previous digests are read first, and a failure puts back the tags
 * already moved. Returns `pushed` with the moving tags added.
 */
export async function moveMovingTags(
  plan: Plan,
  pushed: PushResult,
  registry: Registry,
  options: MoveOptions = {},
): Promise<PushResult> {
  const sink = options.sink ?? silentSink;
  const redactor = options.redactor ?? new Redactor();
  // Immutable tags are already published: any failure from here on is a failed push (exit 1).
  const failure = (err: unknown, where: string, state: string) =>
    wrapFailure(err, where, state, { changed: true, sink, redactor });
  const images = new Map(
    pushed.images.map((i) => [
      i.name,
      { ...i, tags: [...i.tags], pushed: [...i.pushed], skipped: [...i.skipped] },
    ]),
  );
  const moves: Move[] = [];
  for (const planned of plan.images) {
    const image = images.get(planned.name);
    if (!image) {
      throw new SlipwayError(
        'PLAN_INVALID',
        `image ${planned.name} was not pushed; moving tags were not changed`,
        {
          resource: planned.name,
        },
      );
    }
    for (const tag of planned.movingTags) {
      moves.push({
        image,
        repository: planned.repository,
        ref: registry.imageName(planned.repository),
        tag,
        previous: null,
      });
    }
  }
  const result = (): PushResult => ({ registry: pushed.registry, images: [...images.values()] });
  if (moves.length === 0) return result();
  sink({
    kind: 'step-start',
    stage: 'push',
    subject: 'moving-tags',
    message: `moving ${moves.map((m) => `${m.image.name}:${m.tag}`).join(', ')}`,
  });
  for (const m of moves) {
    try {
      m.previous = await registry.resolve(m.repository, m.tag);
    } catch (err) {
      throw failure(err, `${m.image.name} (${m.ref.withTag(m.tag)})`, 'moving tags were not changed');
    }
  }
  const moved: Move[] = [];
  for (const m of moves) {
    const target = m.ref.withTag(m.tag);
    const digest = m.image.digest;
    if (m.previous === digest) {
      m.image.skipped.push(m.tag);
      m.image.tags.push(m.tag);
      sink({
        kind: 'step-done',
        stage: 'push',
        subject: m.image.name,
        message: `${target}@${digest} already there`,
        skipped: true,
      });
      continue;
    }
    try {
      if (options.signal?.aborted) throw new SlipwayError('INTERRUPTED', 'push interrupted');
      moved.push(m);
      await registry.putTag(m.repository, digest, m.tag);
      const served = await registry.resolve(m.repository, m.tag);
      if (served !== digest) {
        throw new SlipwayError(
          'DIGEST_MISMATCH',
          `${target} resolves to ${served ?? 'nothing'}, not ${digest}`,
          {
            resource: target.toString(),
          },
        );
      }
    } catch (err) {
      const rollbackMs = (options.timeouts ?? DEFAULT_TIMEOUTS).operationMs;
      throw failure(
        err,
        `${m.image.name} (${target})`,
        await rollBack(registryWithDeadline(registry, rollbackMs), moved),
      );
    }
    m.image.pushed.push(m.tag);
    m.image.tags.push(m.tag);
    sink({
      kind: 'step-done',
      stage: 'push',
      subject: m.image.name,
      message: `${target}@${digest} (moved from ${m.previous ?? 'nothing'})`,
    });
  }
  return result();
}

/** Puts moved tags back; returns the sentence describing the moving tags' state. */
async function rollBack(registry: Pick<Registry, 'resolve' | 'putTag'>, moved: Move[]): Promise<string> {
  if (moved.length === 0) return 'moving tags were not changed';
  const stuck: string[] = [];
  let restored = 0;
  for (const m of [...moved].reverse()) {
    const name = m.ref.withTag(m.tag).toString();
    if (m.previous === null) {
      // A registry cannot delete a tag without deleting the manifest the immutable tag shares.
      // The tag may not exist at all if the failing write never landed; only say so when it does.
      const now = await registry.resolve(m.repository, m.tag).catch(() => 'unknown');
      if (now !== null) stuck.push(`${name} (did not exist before; now ${now})`);
      continue;
    }
    try {
      if ((await registry.resolve(m.repository, m.tag)) !== m.previous) {
        await registry.putTag(m.repository, m.previous, m.tag);
        restored++;
      }
    } catch (err) {
      stuck.push(`${name} (restoring ${m.previous} failed: ${messageOf(err)})`);
    }
  }
  if (stuck.length > 0) return `moving tags could not all be restored: ${stuck.join(', ')}`;
  return restored === 0
    ? 'moving tags were not changed'
    : `moving tags were not changed (${restored} moved tag${restored === 1 ? ' was' : 's were'} restored)`;
}
