import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
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
  const client = boundedClient(timeouts);
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const { undici, dispatcher } = client();
    return undici.fetch(input as Parameters<typeof Undici.fetch>[0], {
      ...(init as Parameters<typeof Undici.fetch>[1]),
      dispatcher,
    });
  }) as unknown as typeof fetch;
}

/** undici and an agent with the limits, both made on the first request. */
function boundedClient(timeouts: Timeouts): () => { undici: typeof Undici; dispatcher: Undici.Agent } {
  let client: { undici: typeof Undici; dispatcher: Undici.Agent } | undefined;
  return () => {
    if (!client) {
      const undici = requireHere('undici') as typeof Undici;
      client = {
        undici,
        dispatcher: new undici.Agent({
          connectTimeout: timeouts.requestMs,
          headersTimeout: timeouts.requestMs,
          bodyTimeout: timeouts.requestMs,
        }),
      };
    }
    return client;
  };
}

/**
 * The same limits for requests whose body is a stream (a blob copied from one registry to
 * another). undici's fetch reads a streamed request body ahead of the socket, so a 500 MB blob
 * would sit in memory; its `request` API writes a Node stream with backpressure, keeping memory
 * flat. Answers as a `Response`, like fetch.
 */
export function boundedStreamFetch(timeouts: Timeouts): typeof fetch {
  const client = boundedClient(timeouts);
  return (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const { undici, dispatcher } = client();
    const body = init?.body;
    const res = await undici.request(String(input), {
      method: (init?.method ?? 'GET') as 'PUT',
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      ...(body
        ? {
            body:
              body instanceof ReadableStream
                ? Readable.fromWeb(body as import('node:stream/web').ReadableStream)
                : (body as Buffer),
          }
        : {}),
      ...(init?.signal ? { signal: init.signal } : {}),
      dispatcher,
    });
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
    }
    const noBody = res.statusCode === 204 || res.statusCode === 304 || init?.method === 'HEAD';
    if (noBody) await res.body.dump();
    return new Response(noBody ? null : (Readable.toWeb(res.body) as ReadableStream), {
      status: res.statusCode,
      headers,
    });
  }) as typeof fetch;
}
