import { describe, expect, it } from 'vitest';
import { isSlipwayError } from './errors.js';
import {
  beforeDeadline,
  DEFAULT_TIMEOUTS,
  DeadlineError,
  formatDuration,
  isTimeout,
  parseDuration,
  parseTimeouts,
} from './timeouts.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['45', 45_000],
    ['1.5s', 1_500],
    [' 10s ', 10_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'fast', '10x', '-5s', '0', '0s', 's'])(
    'refuses "%s" as a usage error naming the flag',
    (text) => {
      let caught: unknown;
      try {
        parseDuration(text, 'SLIPWAY_TIMEOUT');
      } catch (err) {
        caught = err;
      }
      expect(isSlipwayError(caught, 'USAGE')).toBe(true);
      expect((caught as Error).message).toBe(`SLIPWAY_TIMEOUT: "${text}" is not a duration`);
    },
  );
});

describe('parseTimeouts', () => {
  it('is the defaults when unset or empty, and a request limit with a double operation deadline otherwise', () => {
    expect(parseTimeouts(undefined)).toEqual({ requestMs: 30_000, operationMs: 60_000 });
    expect(parseTimeouts('')).toBe(DEFAULT_TIMEOUTS);
    expect(parseTimeouts('5s')).toEqual({ requestMs: 5_000, operationMs: 10_000 });
  });
});

describe('formatDuration', () => {
  it.each([
    [500, '500ms'],
    [1_000, '1s'],
    [30_000, '30s'],
    [60_000, '1m'],
    [90_000, '1m30s'],
  ])('%d ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('isTimeout', () => {
  it('finds a time-out anywhere in the cause chain, and nothing else', () => {
    const headers = Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(isTimeout(new TypeError('fetch failed', { cause: headers }))).toBe(true);
    expect(isTimeout(new DeadlineError(1000))).toBe(true);
    expect(isTimeout(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toBe(true);
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isTimeout(new TypeError('fetch failed', { cause: refused }))).toBe(false);
    expect(isTimeout(new Error('no'))).toBe(false);
  });
});

describe('beforeDeadline', () => {
  it('passes a result through before the deadline and rejects with a DeadlineError after it', async () => {
    await expect(beforeDeadline(Promise.resolve(7), Date.now() + 1_000)).resolves.toBe(7);
    await expect(beforeDeadline(new Promise(() => {}), Date.now() + 20)).rejects.toBeInstanceOf(
      DeadlineError,
    );
    await expect(beforeDeadline(Promise.resolve(1), Date.now() - 1)).rejects.toBeInstanceOf(DeadlineError);
  });
});
