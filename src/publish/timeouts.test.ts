import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, timeoutsFor } from '../core/timeouts.js';
import { RETRY_DEFAULTS, stalledOperationMs } from './retry.js';

describe('a stalled registry, by the defaults', () => {
  it('fails one retried operation within the operation deadline although the attempts alone would take longer', () => {
    const attemptsAlone = RETRY_DEFAULTS.attempts * DEFAULT_TIMEOUTS.requestMs;
    expect(attemptsAlone).toBe(120_000);
    expect(stalledOperationMs(DEFAULT_TIMEOUTS)).toBe(DEFAULT_TIMEOUTS.operationMs);
    expect(DEFAULT_TIMEOUTS.operationMs).toBe(60_000);
  });

  it('fails a push within about two minutes: the failing operation plus a rollback bounded by one deadline', () => {
    const worst = stalledOperationMs(DEFAULT_TIMEOUTS) + DEFAULT_TIMEOUTS.operationMs;
    expect(worst).toBeLessThanOrEqual(120_000);
  });

  it('sums per-request limits and backoffs when they end before the deadline', () => {
    // 3 attempts of 1 s with 250 ms and 500 ms backoff in between, under a 10 s deadline.
    expect(stalledOperationMs({ requestMs: 1_000, operationMs: 10_000 }, { attempts: 3 })).toBe(3_750);
    expect(stalledOperationMs(timeoutsFor(1_000))).toBe(2_000);
  });
});
