import type { ImageRef } from '../core/image-ref.js';
import type { EngineAuth } from '../engine/image-engine.js';

/** Credentials for the engine's push and pull (moved to the engine port; re-exported for compatibility). */
export type { EngineAuth } from '../engine/image-engine.js';

/**
 * The registry port: only the calls Slipway makes. Two implementations, selected by URL:
 * `ecr://<account>.dkr.ecr.<region>.amazonaws.com` and `oci://host[:port][/prefix]`.
 */

/** Settings for repositories the registry creates (`--create-repos`; ECR only). */
export interface RepositorySettings {
  readonly scanOnPush: boolean;
  readonly tagMutability: 'MUTABLE' | 'IMMUTABLE';
}

/** Options of {@link Registry.putTag}. */
export interface PutTagOptions {
  /**
   * The repository (same registry) holding the manifest, when it is not `repository` itself:
   * its blobs are mounted into `repository` before the manifest is written, so no layer moves.
   */
  readonly from?: string;
}

/** What a registry can say about a repository (for `status`). */
export interface RepositoryInfo {
  /** False when the registry does not know the repository at all. */
  readonly exists: boolean;
  /** How many images it holds (distinct tagged manifests on an OCI registry), or null when it cannot say. */
  readonly imageCount: number | null;
  /** The newest push time (ISO-8601), or null when unknown or empty. */
  readonly newestPush: string | null;
  /**
   * Where `newestPush` comes from: `pushed` is the registry's own push time (ECR); `created` is
   * the newest image's build time from its config (the Distribution API records no push time).
   */
  readonly newestPushSource: 'pushed' | 'created' | null;
}

/** One image as the registry serves it: its manifest digest and what its config says. */
export interface ImageDetails {
  /** The manifest digest (what a tag resolves to and a pin holds). */
  readonly digest: string;
  /** The config digest (the engine's image ID for a single-platform image), or null for an index. */
  readonly configDigest: string | null;
  /** The config's `created` time, or null. */
  readonly created: string | null;
  /** When the registry received it (ECR), or null when the registry cannot say. */
  readonly pushedAt: string | null;
  /** The image's labels (from its config). */
  readonly labels: Readonly<Record<string, string>>;
}

/** A manifest as a registry serves it: its bytes, media type and digest. */
export interface RegistryManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

/** An OCI content descriptor (a manifest's config, layer, subject, or a referrers entry). */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A blob opened for streaming: its size and its bytes. */
export interface BlobStream {
  readonly size: number;
  readonly body: ReadableStream<Uint8Array>;
}

/** A container registry. */
export interface Registry {
  /** The registry URL without credentials, e.g. `oci://127.0.0.1:5000/prefix`. */
  readonly url: string;
  /** The full image name for a manifest repository, e.g. `127.0.0.1:5000/prefix/molecule-ai/platform`. */
  imageName(repository: string): ImageRef;
  /** The manifest repository an image reference names in this registry, or null when it is elsewhere. */
  repositoryOf(ref: ImageRef): string | null;
  /** Credentials for the engine's push and pull of images in this registry. */
  engineAuth(): Promise<EngineAuth>;
  /**
   * Makes sure the repository exists. Without `create`, a missing repository is a
   * REPOSITORY_NOT_FOUND error naming the repository (and, for ECR, the account and the flag).
   */
  ensureRepository(
    repository: string,
    options: { create: boolean; settings: RepositorySettings },
  ): Promise<void>;
  /** The digest a tag points at, or null when the tag does not exist. */
  resolve(repository: string, tag: string): Promise<string | null>;
  /**
   * The config digest of the manifest `digest` (for a single-platform image this is the engine's
   * image ID), or null when the manifest is missing or an index: how a push knows the local image
   * is already there even after its registry-named tags were removed.
   */
  configDigest(repository: string, digest: string): Promise<string | null>;
  /** Points `tag` at the manifest `digest` by copying the manifest (no layer is uploaded). */
  putTag(repository: string, digest: string, tag: string, options?: PutTagOptions): Promise<void>;
  /** Whether the repository exists, how many images it holds and when it was last pushed to. */
  describeRepository(repository: string): Promise<RepositoryInfo>;
  /** The image a tag or digest names, with its config's labels and times; null when it does not resolve. */
  imageDetails(repository: string, reference: string): Promise<ImageDetails | null>;
  /** Reads a manifest by tag or digest (a digest reference is verified against the bytes); null when absent. */
  manifest(repository: string, reference: string): Promise<RegistryManifest | null>;
  /** Writes a manifest under a tag, or under its own digest; returns the digest the registry stored. */
  putManifest(
    repository: string,
    reference: string,
    manifest: { readonly mediaType: string; readonly body: Buffer },
  ): Promise<string>;
  /** Whether the repository holds the blob. */
  hasBlob(repository: string, digest: string): Promise<boolean>;
  /** Reads a small blob (a config, an attestation), verifying its digest; null when absent. */
  readBlob(repository: string, digest: string): Promise<Buffer | null>;
  /** Opens a blob for streaming (a layer copied to another registry); null when absent. */
  openBlob(repository: string, digest: string): Promise<BlobStream | null>;
  /** Uploads a blob (bytes, or a stream of `size` bytes) that must hash to `digest`. Not retried for a stream. */
  putBlob(repository: string, digest: string, content: Buffer | BlobStream): Promise<void>;
  /** Mounts a blob from another repository of the same registry; false when the registry declined. */
  tryMountBlob(repository: string, digest: string, from: string): Promise<boolean>;
  /**
   * The OCI 1.1 referrers of a manifest digest (optionally of one artifact type), or null when the
   * registry does not implement the referrers API (the caller falls back to tag schemes).
   */
  referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[] | null>;
}
