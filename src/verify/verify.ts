import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { checkContract, contractViolation, formatContractDetails } from '../manifest/contract.js';
import { baseGraphBroken } from '../manifest/graph.js';
import type { LoadedManifest } from '../manifest/load.js';
import { checkPreflight, formatPreflightDetails, preflightFailure } from '../preflight/preflight.js';
import { checkRemoteCommits } from '../sources/remote-check.js';
import type { TemplateSources } from '../sources/source.js';

/** Options for {@link verifyManifest}. */
export interface VerifyOptions {
  /** Also check every pinned commit exists at its source (network). */
  readonly remote?: boolean;
  /** Refuse unpinned `path` sources. */
  readonly strict?: boolean;
  /** Environment for source tokens (GITHUB_TOKEN, GITEA_TOKEN). */
  readonly env?: NodeJS.ProcessEnv;
  /** The template sources port for the remote check (default: `sourceFor`). */
  readonly sources?: TemplateSources;
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
 * Verifies a loaded manifest: the pinning contract and the Dockerfile preflight, both always
 * and reported together, then (with `remote`) the existence of every pinned commit. Throws
 * CONTRACT_VIOLATION (listing the preflight's problems too), or PREFLIGHT_FAILED when only
 * the Dockerfiles are wrong.
 */
export async function verifyManifest(
  loaded: LoadedManifest,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const sink = options.sink ?? silentSink;
  const checks: string[] = ['schema', 'pinning contract'];
  const contract = checkContract(loaded.manifest, { strict: options.strict ?? false });
  if (contract.errors.length === 0) {
    sink({
      kind: 'step-done',
      stage: 'verify',
      subject: loaded.file,
      message: 'schema and pinning contract hold',
    });
  }
  // A broken base graph is the contract's to report; preflight would echo it as a Dockerfile fault.
  const dockerfiles = await checkPreflight(loaded, {
    sink,
    skipBaseChecks: baseGraphBroken(loaded.manifest),
    ...(options.buildArgs ? { buildArgs: { ...options.buildArgs } } : {}),
  });
  const failure = verifyFailure(loaded, contract.errors, dockerfiles.errors);
  if (failure) throw failure;
  if (Object.keys(loaded.manifest.images).length > 0) checks.push('dockerfile preflight');
  if (options.remote) {
    const found = await checkRemoteCommits(loaded, {
      env: options.env ?? {},
      sink,
      ...(options.sources ? { sources: options.sources } : {}),
    });
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

/** One error for every contract and preflight problem, or null when there is none. */
function verifyFailure(
  loaded: LoadedManifest,
  contract: readonly ErrorDetail[],
  preflight: readonly ErrorDetail[],
): SlipwayError | null {
  if (contract.length === 0) return preflight.length === 0 ? null : preflightFailure(loaded, preflight);
  if (preflight.length === 0) return contractViolation(loaded, contract);
  const count = (n: number) => `${n} problem${n === 1 ? '' : 's'}`;
  return new SlipwayError(
    'CONTRACT_VIOLATION',
    `${loaded.file}: the pinning contract is broken (${count(contract.length)}):\n${formatContractDetails(contract)}\nand preflight found ${count(preflight.length)}:\n${formatPreflightDetails(preflight)}`,
    {
      resource: loaded.file,
      details: [...contract, ...preflight],
      hint: 'fix the manifest and the Dockerfiles; `slipway verify` re-checks both',
    },
  );
}
