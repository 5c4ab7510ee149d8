import { messageOf, SlipwayError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import type { ImageRef } from '../core/image-ref.js';
import { type EngineAuth, type ImageEngine, type ImageInfo, PullError } from '../engine/image-engine.js';
import type { PlannedImage } from '../plan/types.js';

/**
 * The registry calls a build makes: finding the base pushed for this plan (a dependent built on
 * another runner than its base) and the images a build may take cached layers from. Every
 * `Registry` (src/publish/registry.ts) has them; the build names only these so it does not
 * depend on the stage after it.
 */
export interface BuildRegistry {
  /** The full image name for a manifest repository. */
  imageName(repository: string): ImageRef;
  /** The digest a tag points at, or null when the tag does not exist. */
  resolve(repository: string, tag: string): Promise<string | null>;
  /** The config digest (image ID) of a manifest, or null when it is missing or an index. */
  configDigest(repository: string, digest: string): Promise<string | null>;
  /** Credentials for the engine's pulls from this registry. */
  engineAuth(): Promise<EngineAuth>;
}

/** A base image pulled from the registry by the digest pushed for the plan. */
export interface ResolvedBase {
  /** `registry/repository@sha256:…`: what BASE_IMAGE is set to (never a moving tag). */
  readonly ref: ImageRef;
  /** The local image ID, equal to the manifest's config digest (verified). */
  readonly id: string;
  readonly info: ImageInfo;
  /** True when the engine had to pull it (false: it was already local). */
  readonly pulled: boolean;
}

/** Options of {@link resolveBase}. */
export interface ResolveBaseOptions {
  readonly engine: ImageEngine;
  readonly registry: BuildRegistry;
  readonly sink: EventSink;
  /** The image built on the base (for messages). */
  readonly dependent: string;
  readonly redact?: (text: string) => string;
}

/**
 * Resolves the base of a dependent image that this run does not build: the digest the base's
 * first immutable tag (`{env}-{sha}`) has in the registry, pulled by that digest unless the
 * engine already holds it, and verified (the local image ID equals the manifest's config
 * digest). Fails when the base was not pushed for this plan: a dependent is never built on a
 * moving tag or on whatever a tag points at later.
 */
export async function resolveBase(base: PlannedImage, options: ResolveBaseOptions): Promise<ResolvedBase> {
  const { engine, registry, sink } = options;
  const tag = base.immutableTags[0];
  const name = registry.imageName(base.repository);
  if (tag === undefined) {
    throw new SlipwayError('PLAN_INVALID', `base ${base.name} has no immutable tag to resolve`, {
      resource: base.name,
    });
  }
  const digest = await registry.resolve(base.repository, tag);
  if (digest === null) {
    throw new SlipwayError(
      'BUILD_FAILED',
      `image ${options.dependent} needs its base ${base.name}, which has not been pushed for this plan: ${name.withTag(tag)} does not exist`,
      {
        resource: name.withTag(tag).toString(),
        hint: `push the base first (slipway push ${base.name} --plan FILE, an earlier matrix level), or build both here without naming only ${options.dependent}`,
      },
    );
  }
  const ref = name.withDigest(digest);
  const expected = await registry.configDigest(base.repository, digest);
  if (expected === null) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `${ref} is not a single-platform image manifest; cannot verify the base of ${options.dependent}`,
      { resource: ref.toString(), hint: 'push the base with slipway (one platform per tag)' },
    );
  }
  let info = await engine.inspectImage(ref.toString());
  let pulled = false;
  if (info?.id !== expected) {
    sink({ kind: 'step-start', stage: 'build', subject: base.name, message: `pulling base ${ref}` });
    try {
      await engine.pull(ref, await registry.engineAuth(), options.redact ? { redact: options.redact } : {});
    } catch (err) {
      const code =
        err instanceof PullError && err.kind === 'engine-unreachable'
          ? 'ENGINE_UNREACHABLE'
          : err instanceof PullError && err.kind === 'registry-unreachable'
            ? 'REGISTRY_UNREACHABLE'
            : 'BUILD_FAILED';
      throw new SlipwayError(code, `pulling base ${ref} of ${options.dependent} failed: ${messageOf(err)}`, {
        resource: ref.toString(),
        hint: 'check the registry is reachable and the credentials may pull',
        cause: err,
      });
    }
    pulled = true;
    info = await engine.inspectImage(ref.toString());
  }
  if (!info || info.id !== expected) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `base ${ref} pulled as ${info?.id ?? 'nothing'}, but the registry says its config is ${expected}`,
      { resource: ref.toString(), hint: 'another writer changed the registry, or a proxy rewrote the image' },
    );
  }
  sink({
    kind: 'step-done',
    stage: 'build',
    subject: base.name,
    message: `base ${ref} (${info.id})${pulled ? ' pulled' : ' already local'}`,
    ...(pulled ? {} : { skipped: true }),
  });
  return { ref, id: info.id, info, pulled };
}

/** Options of {@link cacheSources}. */
export interface CacheSourceOptions {
  readonly engine: ImageEngine;
  readonly registry: BuildRegistry;
  readonly sink: EventSink;
  /** BuildKit reads a registry image's inline cache without a pull; the classic builder cannot. */
  readonly buildkit: boolean;
  /** The base's reference, when the base was resolved from the registry. */
  readonly base?: ImageRef;
  readonly redact?: (text: string) => string;
}

/**
 * The images a build takes cached layers from (`cachefrom`): the image's first moving tag
 * (`{env}-latest`) as the registry has it, pinned to its current digest, and the base. BuildKit
 * imports the inline cache metadata of a registry image without pulling it; dockerd 20.10's
 * classic builder only matches local images, so for it the image is pulled first (by digest).
 * A cache source that cannot be had is skipped with a warning: the cache never fails a build.
 */
export async function cacheSources(image: PlannedImage, options: CacheSourceOptions): Promise<string[]> {
  const { engine, registry, sink } = options;
  const sources: string[] = [];
  const moving = image.movingTags[0];
  if (moving !== undefined) {
    const name = registry.imageName(image.repository);
    try {
      const digest = await registry.resolve(image.repository, moving);
      if (digest !== null) {
        const ref = name.withDigest(digest);
        if (!options.buildkit && !(await engine.inspectImage(ref.toString()))) {
          sink({
            kind: 'log',
            stage: 'build',
            level: 'info',
            subject: image.name,
            message: `pulling ${ref} as a layer cache (the classic builder only uses local images)`,
          });
          await engine.pull(
            ref,
            await registry.engineAuth(),
            options.redact ? { redact: options.redact } : {},
          );
        }
        sources.push(ref.toString());
      }
    } catch (err) {
      sink({
        kind: 'log',
        stage: 'build',
        level: 'warn',
        subject: image.name,
        message: `no layer cache from ${name.withTag(moving)}: ${messageOf(err)}`,
      });
    }
  }
  if (options.base) sources.push(options.base.toString());
  if (sources.length > 0) {
    sink({
      kind: 'log',
      stage: 'build',
      level: 'info',
      subject: image.name,
      message: `layer cache from ${sources.join(', ')}`,
    });
  }
  return sources;
}
