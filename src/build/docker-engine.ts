import Docker from 'dockerode';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import { BuildLog, type BuildMessage, TAIL_LINES } from './build-stream.js';
import type { BuildEngine, BuiltImageInfo } from './engine.js';

type FollowProgress = (
  stream: NodeJS.ReadableStream,
  onFinished: (err: Error | null) => void,
  onProgress: (msg: BuildMessage) => void,
) => void;

const UNREACHABLE_HINT = 'is dockerd running, and is DOCKER_HOST right?';

function translate(what: string, err: unknown, resource?: string): SlipwayError {
  if (err instanceof SlipwayError) return err;
  if (isUnreachable(err)) {
    return new SlipwayError(
      'ENGINE_UNREACHABLE',
      `${what}: the Docker engine is unreachable (${messageOf(err)})`,
      {
        hint: UNREACHABLE_HINT,
        cause: err,
        ...(resource ? { resource } : {}),
      },
    );
  }
  return new SlipwayError('BUILD_FAILED', `${what}: ${messageOf(err)}`, {
    cause: err,
    ...(resource ? { resource } : {}),
  });
}

/** A {@link BuildEngine} over dockerode (the default client talks to the local engine socket). */
export function dockerBuildEngine(docker: Docker = new Docker()): BuildEngine {
  const inspectImage = async (ref: string): Promise<BuiltImageInfo | null> => {
    try {
      const info = await docker.getImage(ref).inspect();
      return { id: info.Id, labels: info.Config?.Labels ?? {}, layers: info.RootFS?.Layers ?? [] };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw translate(`inspect ${ref}`, err, ref);
    }
  };

  return {
    inspectImage,
    async build(request, onLine, signal) {
      const what = `build ${request.subject}`;
      if (signal?.aborted) throw interrupted(request.subject, signal);
      const log = new BuildLog(onLine);
      let stream: NodeJS.ReadableStream;
      try {
        stream = await docker.buildImage(request.context, {
          t: request.tag,
          dockerfile: request.dockerfile,
          buildargs: { ...request.buildArgs },
          labels: { ...request.labels },
          ...(request.target ? { target: request.target } : {}),
          nocache: request.noCache,
          // Never pull: images come from this run or are already local (build.ts checks FROMs).
          pull: false,
          rm: true,
          // Remove intermediate containers even when a step fails (no stopped leftovers).
          forcerm: true,
          version: request.buildkit ? '2' : '1',
          ...(signal ? { abortSignal: signal } : {}),
        });
      } catch (err) {
        if (signal?.aborted) throw interrupted(request.subject, signal);
        throw translate(what, err, request.tag);
      }
      try {
        await new Promise<void>((resolve, reject) => {
          // dockerode's followProgress (untyped) also decodes BuildKit's protobuf trace into lines.
          (docker as unknown as { followProgress: FollowProgress }).followProgress(
            stream,
            (err: Error | null) => (err ? reject(err) : resolve()),
            (msg: BuildMessage) => log.push(msg),
          );
        });
      } catch (err) {
        if (signal?.aborted) throw interrupted(request.subject, signal);
        throw translate(what, err, request.tag);
      }
      log.end();
      if (signal?.aborted) throw interrupted(request.subject, signal);
      if (log.error !== null) {
        throw new SlipwayError(
          'BUILD_FAILED',
          `${what} failed${log.step ? ` at ${log.step}` : ''}: ${log.error}${
            log.tail.length > 0
              ? `\nlast ${Math.min(log.tail.length, TAIL_LINES)} log lines:\n  ${log.tail.join('\n  ')}`
              : ''
          }`,
          {
            resource: request.subject,
            hint: 'fix the failing step; the full log streamed above',
            details: [{ at: log.step ?? request.dockerfile, message: log.error }],
          },
        );
      }
      // A stream that ended without an image ID is not a success: ask the engine what the tag is.
      const tagged = await inspectImage(request.tag);
      if (!tagged || (log.imageId !== null && !tagged.id.includes(log.imageId.replace(/^sha256:/, '')))) {
        throw new SlipwayError(
          'BUILD_FAILED',
          `${what}: the build stream ended without producing ${request.tag}${
            log.tail.length > 0 ? `\nlast log lines:\n  ${log.tail.join('\n  ')}` : ''
          }`,
          {
            resource: request.subject,
            hint: 'rerun with --verbose; check the engine log (journalctl -u docker)',
          },
        );
      }
      return tagged.id;
    },
  };
}

function interrupted(subject: string, signal: AbortSignal): SlipwayError {
  const reason: unknown = signal.reason;
  if (reason instanceof SlipwayError) return reason;
  return new SlipwayError('INTERRUPTED', `build ${subject} interrupted`, { resource: subject });
}
