import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { Timeouts } from './timeouts.js';

// undici (CommonJS, about 1 MB of code) loads on the first request, not when the CLI starts.
const requireHere = createRequire(import.meta.url);

/**
 * A fetch whose every request is bounded: connecting, waiting for the response headers, and
 * each silence while the body streams all end after `timeouts.requestMs`. (The global fetch
 * waits 300 s for headers and has no connect limit of its own.)
 */
export function boundedFetch(timeouts: Timeouts): typeof fetch {
  let client: { dispatcher: Undici.Agent; fetch: typeof Undici.fetch } | undefined;
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    if (!client) {
      const { Agent, fetch: undiciFetch } = requireHere('undici') as typeof Undici;
      client = {
        dispatcher: new Agent({
          connectTimeout: timeouts.requestMs,
          headersTimeout: timeouts.requestMs,
          bodyTimeout: timeouts.requestMs,
        }),
        fetch: undiciFetch,
      };
    }
    return client.fetch(input as Parameters<typeof Undici.fetch>[0], {
      ...(init as Parameters<typeof Undici.fetch>[1]),
      dispatcher: client.dispatcher,
    });
  }) as unknown as typeof fetch;
}
