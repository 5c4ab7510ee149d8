import Docker from 'dockerode';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import type { ImageRef } from '../core/image-ref.js';
import type { EngineAuth } from './registry.js';

/** A local image as the engine knows it. */
export interface LocalImage {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
}

/** The engine calls a push makes: inspect, tag, push, and untag what it tagged. */
export interface PushEngine {
  /** The image by ID or name, or null when the engine does not have it. */
  inspect(image: string): Promise<LocalImage | null>;
  /** Adds the tag `target` (which must carry a tag) to a local image. */
  tag(image: string, target: ImageRef): Promise<void>;
  /** Removes a tag (never the image it names: the caller checks other tags remain). */
  removeTag(ref: string): Promise<void>;
  /** Pushes `target`; returns the digest the engine reported. Every stream line goes to `onLine`. */
  push(target: ImageRef, auth: EngineAuth, onLine: (line: string) => void): Promise<{ digest: string }>;
}

interface PushEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

/** A {@link PushEngine} over dockerode (the default client talks to the local engine socket). */
export function dockerPushEngine(docker: Docker = new Docker()): PushEngine {
  const engineCall = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
      if (isUnreachable(err)) {
        throw new SlipwayError(
          'ENGINE_UNREACHABLE',
          `${what}: the Docker engine is unreachable (${messageOf(err)})`,
          {
            hint: 'is dockerd running and DOCKER_HOST right?',
            cause: err,
          },
        );
      }
      throw new SlipwayError('PUSH_FAILED', `${what}: ${messageOf(err)}`, { cause: err });
    }
  };
  return {
    async inspect(image) {
      try {
        const info = await docker.getImage(image).inspect();
        return { id: info.Id, repoTags: info.RepoTags ?? [], repoDigests: info.RepoDigests ?? [] };
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        return engineCall(`inspect ${image}`, () => Promise.reject(err));
      }
    },
    async tag(image, target) {
      await engineCall(`tag ${image} as ${target}`, () =>
        docker.getImage(image).tag({ repo: target.name, tag: target.tag ?? 'latest' }),
      );
    },
    async removeTag(ref) {
      await engineCall(`untag ${ref}`, () => docker.getImage(ref).remove({ noprune: true }));
    },
    async push(target, auth, onLine) {
      const what = `push ${target}`;
      const stream = await engineCall(what, () =>
        // The engine rejects a push without an X-Registry-Auth header, even for an open registry.
        docker.getImage(target.name).push({ tag: target.tag ?? 'latest', authconfig: { ...auth } }),
      );
      const events = await engineCall(
        what,
        () =>
          new Promise<PushEvent[]>((resolve, reject) => {
            const seen: PushEvent[] = [];
            docker.modem.followProgress(
              stream,
              (err: Error | null) => (err ? reject(err) : resolve(seen)),
              (e: PushEvent) => {
                seen.push(e);
                const line = describe(e);
                if (line) onLine(line);
              },
            );
          }),
      );
      // A stream that ends is not a push that succeeded: errors arrive as events.
      const failed = events.find((e) => e.error || e.errorDetail);
      if (failed) {
        const tail = events
          .map(describe)
          .filter((l): l is string => Boolean(l))
          .slice(-8);
        throw new SlipwayError(
          'PUSH_FAILED',
          `${what} failed: ${failed.errorDetail?.message ?? failed.error}\n${tail.map((l) => `  | ${l}`).join('\n')}`,
          {
            resource: target.toString(),
            hint: 'check the registry is reachable and the credentials may push',
          },
        );
      }
      const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
      if (!digest) {
        throw new SlipwayError('PUSH_FAILED', `${what}: the engine reported no digest`, {
          resource: target.toString(),
        });
      }
      return { digest };
    },
  };
}

/** A readable line for a push event, or null for progress-bar noise. */
function describe(e: PushEvent): string | null {
  if (e.error) return `error: ${e.errorDetail?.message ?? e.error}`;
  if (e.aux?.Digest) return `digest ${e.aux.Digest}`;
  if (!e.status || (e.progressDetail && e.progressDetail.current !== undefined)) return null;
  if (e.status === 'Pushing' || e.status === 'Waiting' || e.status === 'Preparing') return null;
  return e.id ? `${e.id}: ${e.status}` : e.status;
}
