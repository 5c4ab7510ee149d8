/**
 * The status report: for every manifest image, what the registry holds, what `{env}-latest` was
 * built from, what the current checkout would build, and every pin on it; plus the flags raised.
 * The facts are gathered through ports (status.ts); the flags come from a pure function (flags.ts).
 */

/** The five problems status reports. */
export type StatusFlagKind = 'EMPTY' | 'STALE' | 'DRIFT' | 'DANGLING' | 'UNVERIFIED';

/** One raised flag: a one-line reason and a hint for the fix. */
export interface StatusFlag {
  readonly kind: StatusFlagKind;
  /** The manifest image. */
  readonly image: string;
  /** What it is about: `repository`, the moving tag (`staging-latest`), or `pin <runtime>`. */
  readonly subject: string;
  readonly reason: string;
  readonly hint: string;
}

/** A consumed template as the current checkout would build it. */
export interface CurrentTemplate {
  readonly name: string;
  /** The manifest's pinned commit (null for a local path source). */
  readonly ref: string | null;
  /** The staged content digest, or null when the receipt has not staged it at this ref. */
  readonly digest: string | null;
}

/** What the current checkout would build for one image, computed without building. */
export interface CurrentInputs {
  /** `sha256:` of the Dockerfile, or null when it cannot be read. */
  readonly dockerfileDigest: string | null;
  /** The build context's tree digest, or null when it cannot be read. */
  readonly contextDigest: string | null;
  /** `sha256:` over the build args and target (plan/plan.ts `argsDigest`). */
  readonly argsDigest: string;
  readonly templates: readonly CurrentTemplate[];
  /** The manifest image this one is built FROM, or null. */
  readonly base: string | null;
}

/** A smoke verdict as status reports it. */
export interface SmokeVerdict {
  readonly passed: boolean;
  /** When the verdict's record was written (null: never smoked). */
  readonly at: string | null;
  readonly message: string;
}

/** The image the moving tag names. */
export interface LatestImage {
  /** The moving tag, e.g. `staging-latest`. */
  readonly tag: string;
  readonly digest: string;
  /** The config digest: the engine's image ID, which dependents record as their base. */
  readonly configDigest: string | null;
  /** Build time: the `org.opencontainers.image.created` label, else the config's `created`. */
  readonly created: string | null;
  /** When the registry received it, where the registry can say (ECR). */
  readonly pushedAt: string | null;
  /** The source revision label, or null. */
  readonly revision: string | null;
  /** The immutable tag the release of `revision` pushed (e.g. `staging-<sha>`), or null without a revision. */
  readonly releaseTag: string | null;
  /** What `releaseTag` resolves to now (null: it does not exist). */
  readonly releaseDigest: string | null;
  /** The image's labels. */
  readonly labels: Readonly<Record<string, string>>;
  readonly smoke: SmokeVerdict;
}

/** One runtime pin on an image. */
export interface PinStatus {
  readonly runtime: string;
  /** The pinned reference and digest, or null when the runtime has no pin yet. */
  readonly pinned: {
    readonly image: string;
    readonly digest: string;
    readonly updatedAt: string;
    readonly updatedBy: string;
    /** True when the newest change to this digest overrode the smoke gate. */
    readonly forced: boolean;
  } | null;
  /** Whether the pinned digest still resolves in the registry (null: no pin, or another registry). */
  readonly resolves: boolean | null;
  readonly smoke: SmokeVerdict | null;
  /** Whether the pin equals the moving tag's digest (null: no pin or no moving tag). */
  readonly equalsLatest: boolean | null;
}

/** What the registry says about the image's repository. */
export interface RepositoryStatus {
  /** The full repository name, e.g. `127.0.0.1:5000/molecule-ai/platform`. */
  readonly name: string;
  readonly exists: boolean;
  readonly imageCount: number | null;
  readonly newestPush: string | null;
  readonly newestPushSource: 'pushed' | 'created' | null;
}

/** The facts gathered for one image, before any flag is raised. */
export interface ImageFacts {
  readonly name: string;
  readonly repository: RepositoryStatus;
  readonly latest: LatestImage | null;
  readonly current: CurrentInputs;
  readonly pins: readonly PinStatus[];
}

/** One image in the report: its facts, the input differences found and its flags. */
export interface ImageStatus extends ImageFacts {
  /** Why the moving tag's inputs differ from the current ones (empty: up to date or not comparable). */
  readonly changes: readonly string[];
  readonly flags: readonly StatusFlag[];
}

/** The status report (versioned JSON, printed by `status --json`). */
export interface StatusReport {
  readonly version: 1;
  /** The registry URL, without credentials. */
  readonly registry: string;
  readonly env: string;
  /** The moving tag compared against, e.g. `staging-latest`. */
  readonly tag: string;
  /** The pin store, without credentials. */
  readonly pinStore: string;
  readonly checkedAt: string;
  /** `--max-age` in seconds, or null. */
  readonly maxAgeSeconds: number | null;
  /** Images in build order (bases first). */
  readonly images: readonly ImageStatus[];
  /** Every flag of every image. */
  readonly flags: readonly StatusFlag[];
  /** True when no flag is raised. */
  readonly ok: boolean;
}
