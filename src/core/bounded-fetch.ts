import { Readable } from 'node:stream';
import type * as UndiciTypes from 'undici';
import type { Timeouts } from './timeouts.js';

/** undici's exports object. */
type Undici = typeof import('undici')['default'];

/**
 * A fetch whose every request is bounded: connecting, waiting for the response headers, and
 * each silence while the body streams all end after `timeouts.requestMs`. (The global fetch
 * waits 300 s for headers and has no connect limit of its own.)
 */
export function boundedFetch(timeouts: Timeouts): typeof fetch {
  const client = boundedClient(timeouts);
  return (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const { undici, dispatcher } = await client();
    return undici.fetch(input as Parameters<Undici['fetch']>[0], {
      ...(init as Parameters<Undici['fetch']>[1]),
      dispatcher,
    });
  }) as unknown as typeof fetch;
}

/**
 * undici and an agent with the limits, both made on the first request: undici (about 1 MB of
 * code) loads when a command first makes a request, not when the CLI starts.
 */
function boundedClient(timeouts: Timeouts): () => Promise<{ undici: Undici; dispatcher: UndiciTypes.Agent }> {
  let client: Promise<{ undici: Undici; dispatcher: UndiciTypes.Agent }> | undefined;
  return () => {
    // A CommonJS package: `default` is its exports object, in Node as in the CLI's bundle (which
    // gives a dynamically imported CommonJS chunk no named exports).
    client ??= import('undici').then(({ default: undici }) => ({
      undici,
      dispatcher: new undici.Agent({
        connectTimeout: timeouts.requestMs,
        headersTimeout: timeouts.requestMs,
        bodyTimeout: timeouts.requestMs,
      }),
    }));
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
    const { undici, dispatcher } = await client();
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
