import { Agent, fetch as undiciFetch } from 'undici';
import type { Timeouts } from './timeouts.js';

/**
 * A fetch whose every request is bounded: connecting, waiting for the response headers, and
 * each silence while the body streams all end after `timeouts.requestMs`. (The global fetch
 * waits 300 s for headers and has no connect limit of its own.)
 */
export function boundedFetch(timeouts: Timeouts): typeof fetch {
  const dispatcher = new Agent({
    connectTimeout: timeouts.requestMs,
    headersTimeout: timeouts.requestMs,
    bodyTimeout: timeouts.requestMs,
  });
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    })) as unknown as typeof fetch;
}
