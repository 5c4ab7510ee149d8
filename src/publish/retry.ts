import pRetry from 'p-retry';
import type { Timeouts } from '../core/timeouts.js';

/** How registry calls are retried: network errors, 5xx and 429 only. */
export interface RetryOptions {
  /** Attempts in all, including the first (default 4). */
  readonly attempts?: number;
  /** Delay before the first retry, doubled each time (default 250 ms). */
  readonly minDelayMs?: number;
  /** Longest delay between attempts, and the cap on an honoured Retry-After (default 20 s). */
  readonly maxDelayMs?: number;
}

/** The retry defaults: 4 attempts, backoff from 250 ms doubling up to 20 s. */
export const RETRY_DEFAULTS = { attempts: 4, minDelayMs: 250, maxDelayMs: 20_000 } as const;

/**
 * The longest one retried registry operation can take when every request stalls: each attempt
 * waits the full per-request limit, backoffs sit between them, and the operation deadline cuts
 * the whole short.
 */
export function stalledOperationMs(timeouts: Timeouts, retry: RetryOptions = {}): number {
  const attempts = Math.max(1, retry.attempts ?? RETRY_DEFAULTS.attempts);
  let total = 0;
  let delay = retry.minDelayMs ?? RETRY_DEFAULTS.minDelayMs;
  for (let i = 0; i < attempts; i++) {
    total += timeouts.requestMs;
    if (i < attempts - 1) {
      total += Math.min(delay, retry.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs);
      delay *= 2;
    }
  }
  return Math.min(total, timeouts.operationMs);
}

/** A response status worth retrying (5xx, 429), carrying the server's Retry-After. */
export class RetryableStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Milliseconds the server asked us to wait, if it said. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = 'RetryableStatusError';
  }
}

/** True for a status the registry may answer differently next time. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Milliseconds from a Retry-After header (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** True for errors that mean "try again": connection failures and retryable statuses. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RetryableStatusError) return true;
  // fetch reports every connection failure as TypeError('fetch failed') with the errno as cause.
  return err instanceof TypeError && err.message === 'fetch failed';
}

/** Runs `fn`, retrying transient failures with exponential backoff (honouring Retry-After). */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions & { signal?: AbortSignal; onRetry?: (err: unknown, attempt: number) => void } = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? RETRY_DEFAULTS.attempts);
  const maxDelay = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
  return pRetry(fn, {
    retries: attempts - 1,
    minTimeout: options.minDelayMs ?? RETRY_DEFAULTS.minDelayMs,
    maxTimeout: maxDelay,
    factor: 2,
    ...(options.signal ? { signal: options.signal } : {}),
    shouldRetry: ({ error }) => isTransient(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!isTransient(error) || retriesLeft === 0) return;
      options.onRetry?.(error, attemptNumber);
      // p-retry's own backoff follows; the server's requested wait comes first.
      if (error instanceof RetryableStatusError && error.retryAfterMs !== undefined) {
        await new Promise((r) => setTimeout(r, Math.min(error.retryAfterMs ?? 0, maxDelay)));
      }
    },
  });
}
