import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { Registry, RegistryManifest } from './registry.js';
import { isTransient, RetryableStatusError } from './retry.js';

/**
 * Copies an image by digest from one registry to another: every blob streamed from the source
 * to the target (or mounted, when both are one registry or the target already holds the blob in
 * a sibling repository), child manifests first, then the manifest under its digest, then read
 * back. The digest cannot change: the manifest bytes are copied as they are.
 */

/** One end of a transfer. */
export interface TransferEnd {
  readonly registry: Registry;
  readonly repository: string;
}

/** Options of {@link transferImage}. */
export interface TransferOptions {
  /** Also point this tag at the digest in the target. */
  readonly tag?: string;
  /** Repositories of the target registry to try mounting blobs from before copying bytes. */
  readonly mountFrom?: readonly string[];
  readonly sink?: EventSink;
}

/** What {@link transferImage} did. */
export interface TransferResult {
  readonly digest: string;
  /** Blobs whose bytes were copied, mounted, or already there. */
  readonly copied: number;
  readonly mounted: number;
  readonly present: number;
}

interface Doc {
  manifests?: Array<{ digest: string }>;
  config?: { digest: string };
  layers?: Array<{ digest: string; urls?: string[] }>;
}

/** Copies `from.repository@digest` to `to.repository@digest` (see the module comment). */
export async function transferImage(
  from: TransferEnd,
  to: TransferEnd,
  digest: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const sink = options.sink ?? silentSink;
  const subject = `${to.registry.imageName(to.repository).name}@${digest}`;
  sink({
    kind: 'step-start',
    stage: 'push',
    subject,
    message: `copying from ${from.registry.imageName(from.repository).name}`,
  });
  const counts = { copied: 0, mounted: 0, present: 0 };
  await copyManifest(from, to, digest, options, counts);
  if (options.tag !== undefined) {
    const manifest = await to.registry.manifest(to.repository, digest);
    if (manifest) await to.registry.putManifest(to.repository, options.tag, manifest);
  }
  const served = await to.registry.manifest(to.repository, digest);
  if (served?.digest !== digest) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `${subject} is not served after the copy (got ${served?.digest ?? 'nothing'})`,
      {
        resource: subject,
        hint: 'the target registry rewrote or dropped the manifest; check its manifest conversion settings',
      },
    );
  }
  sink({
    kind: 'step-done',
    stage: 'push',
    subject,
    message: `copied ${counts.copied} blob(s), mounted ${counts.mounted}, ${counts.present} already there`,
  });
  return { digest, ...counts };
}

async function copyManifest(
  from: TransferEnd,
  to: TransferEnd,
  digest: string,
  options: TransferOptions,
  counts: { copied: number; mounted: number; present: number },
): Promise<void> {
  const manifest = await from.registry.manifest(from.repository, digest);
  if (!manifest) {
    throw new SlipwayError(
      'REGISTRY_ERROR',
      `${from.registry.imageName(from.repository).name}@${digest} does not exist`,
      {
        resource: `${from.registry.imageName(from.repository).name}@${digest}`,
        hint: 'check the digest and the source --registry',
      },
    );
  }
  const doc = parse(manifest);
  for (const child of doc.manifests ?? []) await copyManifest(from, to, child.digest, options, counts);
  const blobs = [
    ...(doc.config ? [doc.config.digest] : []),
    // Foreign layers (with urls) are never stored by a registry.
    ...(doc.layers ?? []).filter((l) => !l.urls?.length).map((l) => l.digest),
  ];
  for (const blob of [...new Set(blobs)]) counts[await copyBlob(from, to, blob, options.mountFrom ?? [])]++;
  const stored = await to.registry.putManifest(to.repository, digest, manifest);
  if (stored !== digest) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `${to.registry.imageName(to.repository).name}@${digest} was stored as ${stored}`,
    );
  }
}

async function copyBlob(
  from: TransferEnd,
  to: TransferEnd,
  digest: string,
  mountFrom: readonly string[],
): Promise<'copied' | 'mounted' | 'present'> {
  if (await to.registry.hasBlob(to.repository, digest)) return 'present';
  const sameRegistry = from.registry.url === to.registry.url;
  const candidates = [
    ...(sameRegistry ? [from.repository] : []),
    ...mountFrom.filter((r) => r !== to.repository),
  ];
  for (const repo of candidates) {
    if (await to.registry.tryMountBlob(to.repository, digest, repo)) return 'mounted';
  }
  // A stream is read once: a transient failure reopens the source and uploads again.
  for (let attempt = 1; ; attempt++) {
    const blob = await from.registry.openBlob(from.repository, digest);
    if (!blob) {
      throw new SlipwayError(
        'REGISTRY_ERROR',
        `${from.registry.imageName(from.repository).name}@${digest}: blob missing`,
        {
          resource: `${from.registry.imageName(from.repository).name}@${digest}`,
        },
      );
    }
    try {
      await to.registry.putBlob(to.repository, digest, blob);
      return 'copied';
    } catch (err) {
      await blob.body.cancel().catch(() => undefined);
      const transient =
        isTransient(err) ||
        isTransient((err as { cause?: unknown }).cause) ||
        err instanceof RetryableStatusError;
      if (
        attempt >= 3 ||
        !(transient || (err instanceof SlipwayError && err.code === 'REGISTRY_UNREACHABLE'))
      )
        throw err;
    }
  }
}

function parse(manifest: RegistryManifest): Doc {
  try {
    return JSON.parse(manifest.body.toString('utf8')) as Doc;
  } catch {
    return {};
  }
}
