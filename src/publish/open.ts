import type { ECRClient } from '@aws-sdk/client-ecr';
import { Redactor } from '../core/redact.js';
import type { Timeouts } from '../core/timeouts.js';
import { OciRegistry } from './oci.js';
import type { Registry } from './registry.js';
import type { RetryOptions } from './retry.js';
import { parseRegistryUrl } from './url.js';

/** Options of {@link openRegistry}. */
export interface OpenRegistryOptions {
  /** Where the AWS SDK's credential and region settings are read (never process.env implicitly). */
  readonly env?: NodeJS.ProcessEnv;
  /** Receives every credential the registry learns, so callers can scrub their own output. */
  readonly redactor?: Redactor;
  /** An ECR client to use instead of one built from the standard AWS chain. */
  readonly ecrClient?: ECRClient;
  /** The fetch used for the OCI Distribution API. */
  readonly fetch?: typeof fetch;
  readonly retries?: RetryOptions;
  /** OCI basic/bearer credentials (the composition root reads them from the settings). */
  readonly username?: string;
  readonly password?: string;
  /** OCI: force plain http (true) or https (false); default http only for loopback hosts. */
  readonly plainHttp?: boolean;
  /** Per-request limit and per-operation deadline (default DEFAULT_TIMEOUTS: 30 s and 60 s). */
  readonly timeouts?: Timeouts;
}

/** Opens the registry a `--registry` URL names: `ecr://...` (AWS ECR) or `oci://...` (Distribution API). */
export async function openRegistry(url: string, options: OpenRegistryOptions = {}): Promise<Registry> {
  const parsed = parseRegistryUrl(url);
  const redactor = options.redactor ?? new Redactor();
  if (parsed.kind === 'ecr') {
    // The AWS SDK loads only for an ECR registry.
    const { EcrRegistry, ecrClientFor, sdkEcrApi } = await import('./ecr.js');
    const client =
      options.ecrClient ??
      ecrClientFor(parsed.region, options.env, options.retries?.attempts ?? 4, options.timeouts);
    return EcrRegistry.open(parsed, sdkEcrApi(client), redactor);
  }
  const { username, password } = options;
  return new OciRegistry(parsed, {
    redactor,
    ...(username !== undefined && password !== undefined ? { username, password } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.retries ? { retries: options.retries } : {}),
    ...(options.plainHttp !== undefined ? { plainHttp: options.plainHttp } : {}),
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
}
