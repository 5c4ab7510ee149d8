import type { ImageRef } from '../core/image-ref.js';

/**
 * The registry port: only the calls Slipway makes. Two implementations, selected by URL:
 * `ecr://<account>.dkr.ecr.<region>.amazonaws.com` and `oci://host[:port][/prefix]`.
 */

/** Credentials in the shape the Docker engine's push/pull `authconfig` takes. Never logged. */
export interface EngineAuth {
  readonly username?: string;
  readonly password?: string;
  readonly serveraddress?: string;
}

/** Settings for repositories the registry creates (`--create-repos`; ECR only). */
export interface RepositorySettings {
  readonly scanOnPush: boolean;
  readonly tagMutability: 'MUTABLE' | 'IMMUTABLE';
}

/** A container registry. */
export interface Registry {
  /** The registry URL without credentials, e.g. `oci://127.0.0.1:5000/prefix`. */
  readonly url: string;
  /** The full image name for a manifest repository, e.g. `127.0.0.1:5000/prefix/molecule-ai/platform`. */
  imageName(repository: string): ImageRef;
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
  /** Points `tag` at the manifest `digest` by copying the manifest (no layer is uploaded). */
  putTag(repository: string, digest: string, tag: string): Promise<void>;
}
