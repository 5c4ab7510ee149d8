import type { ErrorDetail } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { assertContract } from '../manifest/contract.js';
import type { LoadedManifest } from '../manifest/load.js';
import { preflight } from '../preflight/preflight.js';
import { checkRemoteCommits } from '../sources/remote-check.js';

/** Options for {@link verifyManifest}. */
export interface VerifyOptions {
  /** Also check every pinned commit exists at its source (network). */
  readonly remote?: boolean;
  /** Refuse unpinned `path` sources. */
  readonly strict?: boolean;
  /** Environment for source tokens (GITHUB_TOKEN, GITEA_TOKEN). */
  readonly env?: NodeJS.ProcessEnv;
  /** Build-arg overrides the run will use, for preflight's variable substitution. */
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly sink?: EventSink;
}

/** What verify checked. */
export interface VerifyResult {
  readonly templates: number;
  readonly images: number;
  readonly pins: number;
  readonly warnings: ErrorDetail[];
  /** Names of the checks that ran, in order. */
  readonly checks: string[];
}

/**
 * Verifies a loaded manifest: the pinning contract (always), then, as the later stages provide
 * them, Dockerfile preflight and (with `remote`) the existence of every pinned commit.
 * Throws the first failing check's SlipwayError.
 */
export async function verifyManifest(
  loaded: LoadedManifest,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const sink = options.sink ?? silentSink;
  const checks: string[] = [];
  const contract = assertContract(loaded, { strict: options.strict ?? false });
  checks.push('schema', 'pinning contract');
  sink({
    kind: 'step-done',
    stage: 'verify',
    subject: loaded.file,
    message: 'schema and pinning contract hold',
  });
  const dockerfiles = await preflight(loaded, {
    sink,
    ...(options.buildArgs ? { buildArgs: { ...options.buildArgs } } : {}),
  });
  if (Object.keys(loaded.manifest.images).length > 0) checks.push('dockerfile preflight');
  if (options.remote) {
    const found = await checkRemoteCommits(loaded, { env: options.env ?? {}, sink });
    checks.push('remote commits');
    sink({
      kind: 'step-done',
      stage: 'verify',
      subject: loaded.file,
      message: `${found.length} pinned commit${found.length === 1 ? '' : 's'} exist at their sources`,
    });
  }
  const { manifest } = loaded;
  return {
    templates: Object.keys(manifest.templates).length,
    images: Object.keys(manifest.images).length,
    pins: Object.keys(manifest.pins).length,
    warnings: [...contract.warnings, ...dockerfiles.warnings],
    checks,
  };
}
