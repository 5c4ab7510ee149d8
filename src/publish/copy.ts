import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { ImageRef } from '../core/image-ref.js';
import type { Registry, RepositorySettings } from './registry.js';

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** Create the target repository (ECR) when missing. */
  readonly createRepos?: boolean;
  readonly repositorySettings?: RepositorySettings;
  readonly sink?: EventSink;
}

/** The result of {@link copyImage}. */
export interface CopyResult {
  /** The source, pinned to the digest that was copied. */
  readonly source: ImageRef;
  /** The target tag, and the digest it now resolves to. */
  readonly target: ImageRef;
  readonly digest: string;
  /** False when the target tag already pointed at the digest. */
  readonly changed: boolean;
}

const DEFAULT_SETTINGS: RepositorySettings = { scanOnPush: true, tagMutability: 'MUTABLE' };

/**
 * Points `dst` (a tag) at the image `src` names (a tag or a digest) by copying its manifest: in
 * the same repository a manifest PUT, across repositories a blob mount first (ECR: BatchGetImage
 * and PutImage). Constant cost whatever the image size: no layer is pulled or pushed.
 * References without a registry host are repositories of the first registry.
 */
export async function copyImage(
  src: ImageRef,
  dst: ImageRef,
  registries: Registry | readonly Registry[],
  options: CopyOptions = {},
): Promise<CopyResult> {
  const sink = options.sink ?? silentSink;
  const list = Array.isArray(registries) ? registries : [registries as Registry];
  const from = locate(src, list, 'source');
  const to = locate(dst, list, 'target');
  if (from.registry !== to.registry) {
    throw new SlipwayError(
      'USAGE',
      `cannot copy ${src} to ${dst}: they are in different registries (${from.registry.url}, ${to.registry.url})`,
      {
        hint: 'a manifest copy works within one registry; pull and push to copy across registries',
      },
    );
  }
  if (!dst.tag || dst.digest) {
    throw new SlipwayError('USAGE', `the target ${dst} must be a tag (repository:tag), without a digest`);
  }
  const registry = from.registry;
  const tag = src.tag ?? 'latest';
  // The source and the target's current digest are read together: one round trip, not two.
  // allSettled, so what is wrong with the source is reported first, whichever answer came first.
  const [resolved, current] = await Promise.allSettled([
    src.digest ?? registry.resolve(from.repository, tag),
    registry.resolve(to.repository, dst.tag),
  ]);
  if (resolved.status === 'rejected') throw resolved.reason;
  const digest = resolved.value;
  if (!digest) {
    throw new SlipwayError(
      'REGISTRY_ERROR',
      `${registry.imageName(from.repository).withTag(tag)} does not exist`,
      {
        resource: registry.imageName(from.repository).withTag(tag).toString(),
        hint: 'check the source tag with `slipway status`, or name a digest',
      },
    );
  }
  if (current.status === 'rejected') throw current.reason;
  const source = registry.imageName(from.repository).withDigest(digest);
  const target = registry.imageName(to.repository).withTag(dst.tag);
  if (current.value === digest) {
    sink({
      kind: 'step-done',
      stage: 'push',
      subject: target.toString(),
      message: `already ${digest}`,
      skipped: true,
    });
    return { source, target, digest, changed: false };
  }
  if (to.repository !== from.repository) {
    await registry.ensureRepository(to.repository, {
      create: options.createRepos ?? false,
      settings: options.repositorySettings ?? DEFAULT_SETTINGS,
    });
  }
  sink({ kind: 'step-start', stage: 'push', subject: target.toString(), message: `copying ${source}` });
  await registry.putTag(
    to.repository,
    digest,
    dst.tag,
    to.repository === from.repository ? {} : { from: from.repository },
  );
  const served = await registry.resolve(to.repository, dst.tag);
  if (served !== digest) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `${target} resolves to ${served ?? 'nothing'} after the copy, not ${digest}`,
      {
        resource: target.toString(),
      },
    );
  }
  sink({ kind: 'step-done', stage: 'push', subject: target.toString(), message: digest });
  return { source, target, digest, changed: true };
}

function locate(
  ref: ImageRef,
  registries: readonly Registry[],
  what: string,
): { registry: Registry; repository: string } {
  const first = registries[0];
  if (!first) throw new SlipwayError('USAGE', 'copyImage needs at least one registry');
  if (ref.registry === undefined) return { registry: first, repository: ref.repository };
  for (const registry of registries) {
    const repository = registry.repositoryOf(ref);
    if (repository !== null) return { registry, repository };
  }
  throw new SlipwayError(
    'USAGE',
    `the ${what} ${ref} is not in ${registries.map((r) => r.url).join(' or ')}`,
    { resource: ref.toString(), hint: 'pass --registry for its registry, or write it as repository:tag' },
  );
}
