import { type BuiltImage, buildImages, selectImages } from '../build/build.js';
import type { LoadedManifest } from '../manifest/load.js';
import type { Plan } from '../plan/types.js';
import { type PushResult, prepareRepositories, pushImages } from '../publish/push.js';
import type { Ports } from './ports.js';

/** What {@link publishPlan} is asked to do. */
export interface PublishRequest {
  /** Publish only these images (and their bases); default every image of the plan. */
  readonly only?: readonly string[];
  /** Create missing (ECR) repositories with the manifest's `publish.ecr` settings. */
  readonly createRepos?: boolean;
  /** Rebuild even when an up-to-date image exists. */
  readonly noCache?: boolean;
  readonly buildkit?: boolean;
  /**
   * `pushed`: the bases of `only` are not built or pushed here but resolved by the digest pushed
   * for this plan (a plan published piecewise, one image per runner). Default `build`.
   */
  readonly bases?: 'build' | 'pushed';
  /**
   * Push and verify the immutable tags only; the caller moves the moving tags later (release
   * does, once every pushed digest passed smoke).
   */
  readonly holdMovingTags?: boolean;
  /**
   * Overwrite an immutable tag that names an image built from other inputs, logging both digests
   * (`--overwrite-immutable`); without it the push is refused with IMMUTABLE_TAG_CONFLICT.
   */
  readonly overwriteImmutable?: boolean;
  readonly signal?: AbortSignal;
}

/** The ports publishing uses. */
export type PublishPorts = Pick<Ports, 'engine' | 'registry' | 'sink' | 'redactor' | 'clock' | 'timeouts'>;

/** What {@link publishPlan} built and pushed. */
export interface PublishResult {
  readonly built: Record<string, BuiltImage>;
  readonly pushed: PushResult;
}

/**
 * The one publishing pipeline, shared by `push` and `release`, in one order: the registry and
 * its credentials first (every repository checked, or created), so a bad password or a missing
 * repository fails in seconds instead of after a build; then build; then push and verify.
 */
export async function publishPlan(
  loaded: LoadedManifest,
  plan: Plan,
  request: PublishRequest,
  ports: PublishPorts,
): Promise<PublishResult> {
  const only = request.only ?? [];
  const pushedBases = request.bases === 'pushed' && only.length > 0;
  const toPush: Plan = { ...plan, images: selectImages(plan, only, !pushedBases) };
  const signal = request.signal ? { signal: request.signal } : {};
  const pushOptions = {
    engine: ports.engine,
    createRepos: request.createRepos ?? false,
    repositorySettings: loaded.manifest.publish.ecr,
    holdMovingTags: request.holdMovingTags ?? false,
    overwriteImmutable: request.overwriteImmutable ?? false,
    sink: ports.sink,
    redactor: ports.redactor,
    timeouts: ports.timeouts,
    ...signal,
  };
  await prepareRepositories(toPush, ports.registry, pushOptions);
  const built = await buildImages(loaded, plan, {
    engine: ports.engine,
    only,
    noCache: request.noCache ?? false,
    buildkit: request.buildkit ?? false,
    bases: request.bases ?? 'build',
    registry: ports.registry,
    redact: (text: string) => ports.redactor.redact(text),
    sink: ports.sink,
    now: ports.clock,
    ...signal,
  });
  const pushed = await pushImages(toPush, built, ports.registry, pushOptions);
  return { built, pushed };
}
