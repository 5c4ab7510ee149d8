import { copyAttestations } from '../attest/attest.js';
import type { AttestationStore } from '../attest/store.js';
import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { ImageRef } from '../core/image-ref.js';
import type { Registry } from '../publish/registry.js';
import { type TransferResult, transferImage } from '../publish/transfer.js';
import { registryRepository } from './promote.js';

/** A registry and the attestations kept in it. */
export interface RegistryWithAttestations {
  readonly registry: Registry;
  readonly attestations: AttestationStore;
}

/** What {@link copyForPromotion} did. */
export interface CopyForPromotionResult {
  /** The image in the target registry, pinned by digest (what the promotion pins). */
  readonly ref: ImageRef;
  readonly digest: string;
  /** The tag the source reference named, also set in the target (null for a digest reference). */
  readonly tag: string | null;
  readonly transfer: TransferResult;
  /** Attestations newly attached in the target. */
  readonly attestations: number;
}

/**
 * Copies the image a reference names (a tag is resolved in the source first) into another
 * registry by digest, with its attestations, and verifies the digest there: the first half of a
 * promotion across registries (the promotion then pins the copy, gated on the copied attestations).
 */
export async function copyForPromotion(
  ref: ImageRef,
  repository: string,
  from: RegistryWithAttestations,
  to: RegistryWithAttestations,
  options: { sink?: EventSink } = {},
): Promise<CopyForPromotionResult> {
  const sink = options.sink ?? silentSink;
  const repo = ref.registry === undefined ? ref.repository : registryRepository(from.registry, ref);
  if (repo !== repository) {
    throw new SlipwayError('USAGE', `${ref.toString()} is not an image of ${repository}`, {
      resource: ref.toString(),
      hint: `promote a digest of ${from.registry.imageName(repository).name}`,
    });
  }
  let digest = ref.digest;
  const tag = ref.digest === undefined ? (ref.tag ?? 'latest') : (ref.tag ?? null);
  if (digest === undefined) {
    digest = (await from.registry.resolve(repository, tag as string)) ?? undefined;
    if (digest === undefined) {
      throw new SlipwayError(
        'REGISTRY_ERROR',
        `tag ${from.registry.imageName(repository).name}:${tag} does not exist`,
        {
          resource: `${from.registry.imageName(repository).name}:${tag}`,
          hint: 'check the tag, or promote a digest',
        },
      );
    }
  }
  const transfer = await transferImage(
    { registry: from.registry, repository },
    { registry: to.registry, repository },
    digest,
    { sink, ...(tag === null ? {} : { tag }) },
  );
  const attestations = await copyAttestations(
    { store: from.attestations, repository },
    { store: to.attestations, repository },
    digest,
  );
  sink({
    kind: 'step-done',
    stage: 'attest',
    subject: `${to.registry.imageName(repository).name}@${digest}`,
    message: `${attestations} attestation(s) copied`,
  });
  return { ref: to.registry.imageName(repository).withDigest(digest), digest, tag, transfer, attestations };
}
