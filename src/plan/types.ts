import type { SmokeSpec } from '../manifest/schema.js';

/**
 * A plan: everything a run will do, computed by a pure function from the manifest and the inputs
 * (env, sha, receipt), versioned JSON so a plan made once can be executed elsewhere
 * (`--plan FILE`). Execution walks it through the ports.
 */

/** A template an image consumes, as it was staged. */
export interface PlannedTemplate {
  readonly name: string;
  readonly ref: string | null;
  readonly digest: string;
}

/** One image to build, push, smoke. Images appear in dependency order (bases first). */
export interface PlannedImage {
  readonly name: string;
  readonly repository: string;
  /** Dockerfile path, relative to the manifest directory. */
  readonly dockerfile: string;
  /** Build context directory, relative to the manifest directory. */
  readonly context: string;
  /** Digest over the context files that the build sends (after .dockerignore). */
  readonly contextDigest: string;
  /** The image this one is built FROM (passed as BASE_IMAGE), or null. */
  readonly base: string | null;
  /** Build args from the manifest and the run's overrides; BASE_IMAGE is added at execution. */
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | null;
  /** OCI and Slipway labels (created/base digest are added at execution). */
  readonly labels: Readonly<Record<string, string>>;
  readonly templates: readonly PlannedTemplate[];
  /** Tags pushed and verified first (e.g. `staging-<sha>`). */
  readonly immutableTags: readonly string[];
  /** Tags moved only after every immutable tag of every image succeeded (e.g. `staging-latest`). */
  readonly movingTags: readonly string[];
  readonly smoke: SmokeSpec | null;
}

/** A runtime pin that a release will move once its image passed smoke. */
export interface PlannedPinMove {
  readonly runtime: string;
  readonly image: string;
  /** The tag whose pushed digest will be pinned (the first immutable tag). */
  readonly tag: string;
}

/** The plan document. */
export interface Plan {
  readonly version: 1;
  readonly env: string;
  /** The source revision being built (40 hex). */
  readonly sha: string;
  /** Where the source lives (for `org.opencontainers.image.source`), if known. */
  readonly source: string | null;
  readonly images: readonly PlannedImage[];
  readonly pins: readonly PlannedPinMove[];
}
