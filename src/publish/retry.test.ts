import { describe, expect, it } from 'vitest';
import {
  isRetryableStatus,
  isTransient,
  parseRetryAfter,
  RetryableStatusError,
  withRetries,
} from './retry.js';

describe('retry classification', () => {
  it('retries 5xx (but 501) and 429, never other 4xx', () => {
    const statuses = [200, 400, 401, 403, 404, 429, 500, 501, 502, 503, 504];
    expect(statuses.filter(isRetryableStatus)).toEqual([429, 500, 502, 503, 504]);
  });

  it('treats fetch connection failures and retryable statuses as transient, anything else not', () => {
    expect(isTransient(new TypeError('fetch failed'))).toBe(true);
    expect(isTransient(new RetryableStatusError(503, 'x', undefined))).toBe(true);
    expect(isTransient(new TypeError('x is not a function'))).toBe(false);
    expect(isTransient(new Error('fetch failed'))).toBe(false);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('withRetries', () => {
  it('retries transient failures up to the attempt bound, then gives the last error', async () => {
    const seen: number[] = [];
    const err = await withRetries(
      async (attempt) => {
        seen.push(attempt);
        throw new RetryableStatusError(503, 'busy', undefined);
      },
      { attempts: 3, minDelayMs: 1 },
    ).catch((e: unknown) => e);
    expect(seen).toEqual([1, 2, 3]);
    expect(err).toBeInstanceOf(RetryableStatusError);
  });

  it('does not retry a non-transient failure', async () => {
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new Error('404 is an answer');
        },
        { attempts: 4, minDelayMs: 1 },
      ),
    ).rejects.toThrow('404 is an answer');
    expect(calls).toBe(1);
  });

  it('waits the Retry-After the server asked for before the next attempt', async () => {
    const times: number[] = [];
    const value = await withRetries(
      async () => {
        times.push(Date.now());
        if (times.length === 1) throw new RetryableStatusError(429, 'slow down', 200);
        return 'ok';
      },
      { attempts: 2, minDelayMs: 1 },
    );
    expect(value).toBe('ok');
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(190);
  });
});
