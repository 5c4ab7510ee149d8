import type Dockerode from 'dockerode';
import { isUnreachable } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import type { EngineAuth } from '../publish/registry.js';

/** Why a pull failed: the registry could not be reached, or it answered no. */
export class PullError extends Error {
  constructor(
    readonly kind: 'registry-unreachable' | 'pull-failed' | 'engine-unreachable',
    message: string,
  ) {
    super(message);
    this.name = 'PullError';
  }
}

// The engine dials the registry itself; its message is all we get (e.g. `dial tcp ...: connection refused`).
const REGISTRY_UNREACHABLE =
  /connection refused|no such host|i\/o timeout|network is unreachable|no route to host|TLS handshake timeout|server misbehaving|dial tcp|EOF$/i;

/**
 * Pulls `ref` with the given credentials and waits for the engine's progress stream to end,
 * scanning every event for `error`/`errorDetail`: a stream that ends is not a pull that
 * succeeded (testcontainers' own image pull ignores those events, so smoke pulls first).
 */
export async function pullImage(
  docker: Dockerode,
  ref: string,
  auth: EngineAuth,
  redactor: Redactor,
  onProgress?: (status: string) => void,
): Promise<void> {
  const fail = (err: unknown): never => {
    if (err instanceof PullError) throw err;
    if (isUnreachable(err)) throw new PullError('engine-unreachable', redactor.redact(messageOf(err)));
    const msg = redactor.redact(messageOf(err));
    throw new PullError(REGISTRY_UNREACHABLE.test(msg) ? 'registry-unreachable' : 'pull-failed', msg);
  };
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(ref, { authconfig: { ...auth } });
  } catch (err) {
    return fail(err);
  }
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        if (err) return reject(err);
        const bad = events.find((e) => e.error || e.errorDetail);
        if (bad) return reject(new Error(bad.errorDetail?.message ?? bad.error ?? 'pull failed'));
        resolve();
      },
      (e: { status?: string; id?: string }) => {
        if (e.status && onProgress && !e.id) onProgress(e.status);
      },
    );
  }).catch(fail);
}

function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}
