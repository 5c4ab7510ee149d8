import { SlipwayError } from './errors.js';

/**
 * Time limits for every remote call Slipway makes (registry, ECR API, git and archive hosts,
 * PostgreSQL). One value, parsed once from `--timeout` / `SLIPWAY_TIMEOUT`, passed down.
 */
export interface Timeouts {
  /** One request: connecting, waiting for the first byte, and any silence while reading the body. */
  readonly requestMs: number;
  /** One retried operation in all (every attempt and backoff), and a rollback in all. */
  readonly operationMs: number;
}

/** The operation deadline is this many request limits: a stalled request is tried twice. */
export const OPERATION_FACTOR = 2;

/** The defaults: 30 s per request, 60 s per retried operation (so a stall fails a push within about 2 min). */
export const DEFAULT_TIMEOUTS: Timeouts = { requestMs: 30_000, operationMs: 30_000 * OPERATION_FACTOR };

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration such as `30s`, `2m`, `1m30s`, `500ms` or a bare number of seconds. */
export function parseDuration(text: string, what = '--timeout'): number {
  const trimmed = text.trim();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(trimmed)) {
    ms = 0;
    for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
      ms += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
    }
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 1) {
    throw new SlipwayError('USAGE', `${what}: "${text}" is not a duration`, {
      hint: 'use e.g. 30s, 2m, 1m30s or 500ms',
    });
  }
  return Math.round(ms);
}

/** The {@link Timeouts} for a per-request limit: each retried operation gets {@link OPERATION_FACTOR} of them. */
export function timeoutsFor(requestMs: number): Timeouts {
  return { requestMs, operationMs: requestMs * OPERATION_FACTOR };
}

/** Timeouts from a duration string (`--timeout`, `SLIPWAY_TIMEOUT`); the defaults when undefined or empty. */
export function parseTimeouts(text: string | undefined, what = '--timeout'): Timeouts {
  if (text === undefined || text.trim() === '') return DEFAULT_TIMEOUTS;
  return timeoutsFor(parseDuration(text, what));
}

/** `30s`, `1m30s`, `500ms`: a duration for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** The reason a deadline signal aborts with, so callers can tell a stall from an interrupt. */
export class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${formatDuration(ms)}`);
    this.name = 'DeadlineError';
  }
}

/** A deadline: `signal` aborts with a {@link DeadlineError} after `ms` unless `clear()` is called first. */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

/** Starts a {@link Deadline} of `ms` (its timer does not hold the process open). */
export function startDeadline(ms: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DeadlineError(ms)), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** True when `err` (or its cause chain) is a time limit running out rather than a refusal. */
export function isTimeout(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 6; depth++) {
    if (cur instanceof DeadlineError) return true;
    const code = (cur as { code?: unknown }).code;
    if (
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'ETIMEDOUT'
    ) {
      return true;
    }
    if ((cur as { name?: unknown }).name === 'TimeoutError') return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Resolves with `work`, or rejects with a {@link DeadlineError} once `until` (epoch ms) passes.
 * `work` is not cancelled: use it only for calls that are bounded themselves (a rollback step).
 */
export async function beforeDeadline<T>(work: Promise<T>, until: number): Promise<T> {
  const left = until - Date.now();
  if (left <= 0) {
    work.catch(() => {});
    throw new DeadlineError(0);
  }
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(left)), left);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
  }
}
