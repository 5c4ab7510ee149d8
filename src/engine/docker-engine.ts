import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { isUnreachable, SlipwayError } from '../core/errors.js';
import type { ImageRef } from '../core/image-ref.js';
import { BuildLog, type BuildMessage, TAIL_LINES } from './build-stream.js';
import { decodePathStat, demuxDockerStream, readArchive } from './container-archive.js';
import { DEFAULT_DOCKER_SOCKET, type DockerConnection, describeConnection } from './docker-connection.js';
import {
  type BuildRequest,
  type ContainerSpec,
  DEFAULT_ENGINE_TIMEOUTS,
  type EngineAuth,
  type EngineTimeouts,
  type ExecOutcome,
  type ImageEngine,
  type ImageInfo,
  type LayerProgress,
  PullError,
} from './image-engine.js';

/** One event of the engine's push or pull progress stream. */
interface ProgressEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

type FollowProgress = <E>(
  stream: NodeJS.ReadableStream,
  onFinished: (err: Error | null, events: E[]) => void,
  onProgress: (event: E) => void,
) => void;

const UNREACHABLE_HINT = 'is dockerd running, and is DOCKER_HOST right?';

// The engine dials the registry itself; its message is all we get (e.g. `dial tcp ...: connection refused`).
const REGISTRY_UNREACHABLE =
  /connection refused|no such host|i\/o timeout|network is unreachable|no route to host|TLS handshake timeout|server misbehaving|dial tcp|EOF$/i;

/** The engine's message (dockerode puts the engine's JSON message in `json.message`). */
function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}

/** The engine's HTTP status on a failed call, if any. */
function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/**
 * dockerode's modem merges defaults it reads from process.env (DOCKER_HOST, DOCKER_CERT_PATH, ...)
 * under the options it is given: every one of them is named here, so only `connection` decides.
 */
function dockerodeFor(connection: DockerConnection, timeoutMs?: number): Docker {
  const cleared = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: undefined,
    username: undefined,
  };
  const options = 'socketPath' in connection ? connection : { ...connection, pathPrefix: '/' };
  // `timeout` is the modem's socket idle limit: the engine must answer (or send more) within it.
  const timeout = timeoutMs === undefined ? {} : { timeout: timeoutMs };
  // dockerode (CommonJS) loads when an engine is first built, not with the library.
  const DockerClient = createRequire(import.meta.url)('dockerode') as typeof Docker;
  return new DockerClient({ ...cleared, ...options, ...timeout } as Docker.DockerOptions);
}

/** `45s`, `2m`, `1m30s`: a limit for messages. */
function seconds(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** A pull or push the engine stopped reporting progress on, or that outlived its deadline. */
class StalledError extends Error {}

/** Options of {@link dockerEngine}. */
export interface DockerEngineOptions {
  /** Time limits; unset fields take {@link DEFAULT_ENGINE_TIMEOUTS}. */
  readonly timeouts?: Partial<EngineTimeouts>;
}

/**
 * The {@link ImageEngine} over dockerode: the one place Slipway constructs an engine client.
 * Without a connection it talks to the local socket (see `dockerConnectionFromEnv` for the
 * docker CLI's environment variables).
 */
export function dockerEngine(
  connection: DockerConnection = { socketPath: DEFAULT_DOCKER_SOCKET },
  options: DockerEngineOptions = {},
): ImageEngine {
  const limits: EngineTimeouts = { ...DEFAULT_ENGINE_TIMEOUTS, ...options.timeouts };
  // Plain calls get the modem's idle limit; streams (build, pull, push, exec output) may be quiet
  // for longer and are bounded by their own timers instead.
  const docker = dockerodeFor(connection, limits.callMs);
  const streams = dockerodeFor(connection);
  const follow = (streams.modem as unknown as { followProgress: FollowProgress }).followProgress.bind(
    streams.modem,
  );
  const where = describeConnection(connection);

  /** Runs an engine call, translating its failure: ENGINE_UNREACHABLE, else `code` (raw engine message unless `what` prefixes it). */
  const call = async <T>(
    code: 'ENGINE_FAILED' | 'BUILD_FAILED' | 'PUSH_FAILED',
    what: string,
    fn: () => Promise<T>,
    options: CallOptions = {},
  ): Promise<T> => {
    const { streaming, ...rest } = options;
    // A streaming call runs on the client without the modem's limit: its hang-up is not a timeout.
    const startedAt = streaming ? {} : { startedAt: Date.now() };
    try {
      return await fn();
    } catch (err) {
      throw translate(code, what, err, { ...rest, ...startedAt });
    }
  };

  const translate = (
    code: 'ENGINE_FAILED' | 'BUILD_FAILED' | 'PUSH_FAILED',
    what: string,
    err: unknown,
    options: TranslateOptions = {},
  ): SlipwayError => {
    if (err instanceof SlipwayError) return err;
    const resource = options.resource ?? what;
    // The modem drops a call whose socket stayed silent for `callMs`; that surfaces as a hang-up.
    const silent = options.startedAt !== undefined && Date.now() - options.startedAt >= limits.callMs - 50;
    if (silent && isUnreachable(err)) {
      return new SlipwayError(
        'ENGINE_UNREACHABLE',
        `${what}: the Docker engine at ${where} did not answer within ${seconds(limits.callMs)}`,
        {
          hint: 'is dockerd hung or overloaded? (raise SLIPWAY_ENGINE_IDLE_TIMEOUT if it is only slow)',
          cause: err,
          resource,
        },
      );
    }
    if (isUnreachable(err)) {
      return new SlipwayError(
        'ENGINE_UNREACHABLE',
        `${what}: the Docker engine at ${where} is unreachable (${engineMessage(err)})`,
        { hint: UNREACHABLE_HINT, cause: err, resource },
      );
    }
    const message = options.prefix === false ? engineMessage(err) : `${what}: ${engineMessage(err)}`;
    return new SlipwayError(code, message, { cause: err, resource });
  };

  const inspectImage = async (ref: string): Promise<ImageInfo | null> => {
    const startedAt = Date.now();
    try {
      const info = await docker.getImage(ref).inspect();
      return {
        id: info.Id,
        labels: info.Config?.Labels ?? {},
        layers: info.RootFS?.Layers ?? [],
        repoTags: info.RepoTags ?? [],
        repoDigests: info.RepoDigests ?? [],
      };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw translate('ENGINE_FAILED', `inspect ${ref}`, err, { resource: ref, startedAt });
    }
  };

  /** Retries a removal the engine refuses with 409 (another removal of it is still running). */
  const removeWithRetry = async (what: string, remove: () => Promise<unknown>): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const startedAt = Date.now();
      try {
        await remove();
        return;
      } catch (err) {
        if (statusOf(err) === 404) return;
        if (statusOf(err) === 409 && attempt < 20) {
          await sleep(250);
          continue;
        }
        throw translate('ENGINE_FAILED', what, err, { prefix: false, startedAt });
      }
    }
  };

  return {
    async ping() {
      await call('ENGINE_FAILED', 'ping', () => docker.ping(), { resource: where });
    },
    inspectImage,
    build: (request, onLine, signal) =>
      build(streams, follow, translate, inspectImage, request, onLine, signal),
    async tag(image, target) {
      await call('PUSH_FAILED', `tag ${image} as ${target}`, () =>
        docker.getImage(image).tag({ repo: target.name, tag: target.tag ?? 'latest' }),
      );
    },
    async removeTag(ref) {
      await call('PUSH_FAILED', `untag ${ref}`, () => docker.getImage(ref).remove({ noprune: true }));
    },
    push: (target, auth, onLine, onProgress) =>
      push(streams, follow, call, limits, target, auth, onLine, onProgress),
    async pull(ref, auth, options = {}) {
      const redact = options.redact ?? ((t: string) => t);
      const fail = (err: unknown): never => {
        if (err instanceof PullError) throw err;
        const msg = redact(engineMessage(err));
        if (isUnreachable(err)) throw new PullError('engine-unreachable', msg);
        throw new PullError(REGISTRY_UNREACHABLE.test(msg) ? 'registry-unreachable' : 'pull-failed', msg);
      };
      let events: ProgressEvent[];
      try {
        events = await followBounded<ProgressEvent>(
          follow,
          (signal) => streams.pull(ref.toString(), { authconfig: { ...auth }, abortSignal: signal }),
          (e) => {
            if (e.status && options.onStatus && !e.id) options.onStatus(e.status);
          },
          limits,
        );
      } catch (err) {
        if (err instanceof StalledError) {
          throw new PullError('registry-unreachable', redact(`pull ${ref}: ${err.message}; aborted`));
        }
        return fail(err);
      }
      // A stream that ends is not a pull that succeeded: errors arrive as events.
      const bad = events.find((e) => e.error || e.errorDetail);
      if (bad) fail(new Error(bad.errorDetail?.message ?? bad.error ?? 'pull failed'));
    },
    async createVolume(name, labels) {
      await call(
        'ENGINE_FAILED',
        `create volume ${name}`,
        () => docker.createVolume({ Name: name, Labels: { ...labels } }),
        {
          prefix: false,
        },
      );
    },
    async removeVolume(name) {
      await removeWithRetry(`volume ${name}`, () => docker.getVolume(name).remove());
    },
    async createContainer(spec) {
      const created = await call(
        'ENGINE_FAILED',
        `create container ${spec.name}`,
        () => docker.createContainer(createOptions(spec)),
        {
          prefix: false,
        },
      );
      return created.id;
    },
    async startContainer(id) {
      await call(
        'ENGINE_FAILED',
        `start container ${id.slice(0, 12)}`,
        () => docker.getContainer(id).start(),
        {
          prefix: false,
        },
      );
    },
    async inspectContainer(id) {
      const info = await call(
        'ENGINE_FAILED',
        `inspect container ${id.slice(0, 12)}`,
        () => docker.getContainer(id).inspect(),
        {
          prefix: false,
        },
      );
      return {
        running: info.State.Running,
        exitCode: info.State.Running ? null : info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
      };
    },
    async logs(id) {
      const buf = (await call(
        'ENGINE_FAILED',
        `logs of ${id.slice(0, 12)}`,
        () => docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false }),
        { prefix: false },
      )) as unknown as Buffer;
      return demuxDockerStream(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf))).all;
    },
    exec: (id, argv, options) =>
      call(
        'ENGINE_FAILED',
        `exec in ${id.slice(0, 12)}`,
        () => execIn(streams.getContainer(id), (execId) => docker.getExec(execId), argv, options),
        { prefix: false, streaming: true },
      ),
    async statPath(id, p) {
      const startedAt = Date.now();
      try {
        const res = (await docker.getContainer(id).infoArchive({ path: p })) as unknown as {
          headers: Record<string, string | undefined>;
          resume?: () => void;
        };
        res.resume?.();
        const header = res.headers['x-docker-container-path-stat'];
        if (!header) throw new Error(`the engine sent no X-Docker-Container-Path-Stat header for ${p}`);
        return decodePathStat(header);
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw translate('ENGINE_FAILED', `stat ${p}`, err, { prefix: false, startedAt });
      }
    },
    async archive(id, p) {
      let stream: NodeJS.ReadableStream;
      const startedAt = Date.now();
      try {
        stream = await docker.getContainer(id).getArchive({ path: p });
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw translate('ENGINE_FAILED', `archive ${p}`, err, { prefix: false, startedAt });
      }
      return call('ENGINE_FAILED', `archive ${p}`, () => readArchive(stream), { prefix: false });
    },
    async removeContainer(id, options = {}) {
      await removeWithRetry(`container ${id.slice(0, 12)}`, () =>
        docker.getContainer(id).remove({ force: true, v: options.volumes ?? true }),
      );
    },
  };
}

function createOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  return {
    name: spec.name,
    Image: spec.image,
    Labels: { ...spec.labels },
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...(spec.entrypoint ? { Entrypoint: [...spec.entrypoint] } : {}),
    ...(spec.command ? { Cmd: [...spec.command] } : {}),
    ...(spec.user ? { User: spec.user } : {}),
    // `name:/path` with a named volume: a fresh volume is filled from the image's directory
    // (content and ownership), as provisioning does in production.
    HostConfig: { Binds: Object.entries(spec.volumes).map(([target, source]) => `${source}:${target}:rw`) },
  };
}

/** How {@link Translate} names a failure; `startedAt` tells a call the modem timed out. */
interface TranslateOptions {
  resource?: string;
  prefix?: boolean;
  startedAt?: number;
}

type Translate = (
  code: 'ENGINE_FAILED' | 'BUILD_FAILED' | 'PUSH_FAILED',
  what: string,
  err: unknown,
  options?: TranslateOptions,
) => SlipwayError;

/** Options of {@link Call}; `streaming` marks a call made on the client without the call limit. */
interface CallOptions {
  resource?: string;
  prefix?: boolean;
  streaming?: boolean;
}

type Call = <T>(
  code: 'ENGINE_FAILED' | 'BUILD_FAILED' | 'PUSH_FAILED',
  what: string,
  fn: () => Promise<T>,
  options?: CallOptions,
) => Promise<T>;

async function build(
  docker: Docker,
  follow: FollowProgress,
  translate: Translate,
  inspectImage: (ref: string) => Promise<ImageInfo | null>,
  request: BuildRequest,
  onLine: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<string> {
  const what = `build ${request.subject}`;
  const fail = (err: unknown): SlipwayError =>
    signal?.aborted
      ? interrupted(request.subject, signal)
      : translate('BUILD_FAILED', what, err, { resource: request.tag });
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
      ...(request.cacheFrom && request.cacheFrom.length > 0
        ? { cachefrom: JSON.stringify(request.cacheFrom) }
        : {}),
      // Never pull: images come from this run or are already local (build.ts checks FROMs).
      pull: false,
      rm: true,
      // Remove intermediate containers even when a step fails (no stopped leftovers).
      forcerm: true,
      version: request.buildkit ? '2' : '1',
      ...(signal ? { abortSignal: signal } : {}),
    });
  } catch (err) {
    throw fail(err);
  }
  try {
    // dockerode's followProgress also decodes BuildKit's protobuf trace into lines.
    await new Promise<void>((resolve, reject) => {
      follow<BuildMessage>(
        stream,
        (err) => (err ? reject(err) : resolve()),
        (msg) => log.push(msg),
      );
    });
  } catch (err) {
    throw fail(err);
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
}

function interrupted(subject: string, signal: AbortSignal): SlipwayError {
  const reason: unknown = signal.reason;
  if (reason instanceof SlipwayError) return reason;
  return new SlipwayError('INTERRUPTED', `build ${subject} interrupted`, { resource: subject });
}

/**
 * Opens a pull or push stream and follows it to its end, collecting every event. Fails with a
 * {@link StalledError} (and aborts the request, so the engine cancels the transfer) when no event
 * arrives for `idleMs`, or the whole takes longer than `totalMs`.
 */
async function followBounded<E>(
  follow: FollowProgress,
  open: (signal: AbortSignal) => Promise<NodeJS.ReadableStream>,
  onEvent: (event: E) => void,
  limits: Pick<EngineTimeouts, 'idleMs' | 'totalMs'>,
): Promise<E[]> {
  const controller = new AbortController();
  let stream: NodeJS.ReadableStream | undefined;
  let stalled: StalledError | undefined;
  const expire = (message: string) => {
    stalled ??= new StalledError(message);
    controller.abort(stalled);
    (stream as { destroy?: () => void } | undefined)?.destroy?.();
  };
  const idle = setTimeout(
    () => expire(`the engine reported no progress for ${seconds(limits.idleMs)}`),
    limits.idleMs,
  );
  const total = setTimeout(() => expire(`not finished after ${seconds(limits.totalMs)}`), limits.totalMs);
  try {
    const seen: E[] = [];
    const opened = await open(controller.signal);
    stream = opened;
    idle.refresh();
    return await new Promise<E[]>((resolve, reject) => {
      controller.signal.addEventListener('abort', () => reject(stalled), { once: true });
      follow<E>(
        opened,
        (err) => (err ? reject(err) : resolve(seen)),
        (e) => {
          idle.refresh();
          seen.push(e);
          onEvent(e);
        },
      );
    });
  } catch (err) {
    throw stalled ?? err;
  } finally {
    clearTimeout(idle);
    clearTimeout(total);
  }
}

async function push(
  docker: Docker,
  follow: FollowProgress,
  call: Call,
  limits: EngineTimeouts,
  target: ImageRef,
  auth: EngineAuth,
  onLine: (line: string) => void,
  onProgress: ((progress: LayerProgress) => void) | undefined,
): Promise<{ digest: string }> {
  const what = `push ${target}`;
  const events = await call(
    'PUSH_FAILED',
    what,
    async () => {
      try {
        return await followBounded<ProgressEvent>(
          follow,
          (signal) =>
            // The engine rejects a push without an X-Registry-Auth header, even for an open registry.
            docker
              .getImage(target.name)
              .push({ tag: target.tag ?? 'latest', authconfig: { ...auth }, abortSignal: signal }),
          (e) => {
            const line = describePushEvent(e);
            if (line) onLine(line);
            if (onProgress && e.id && e.status && !e.error) onProgress(layerProgress(e.id, e.status, e));
          },
          limits,
        );
      } catch (err) {
        if (!(err instanceof StalledError)) throw err;
        throw new SlipwayError('PUSH_FAILED', `${what}: ${err.message}; the push was aborted`, {
          resource: target.toString(),
          hint: 'is the registry answering? (raise SLIPWAY_ENGINE_IDLE_TIMEOUT or SLIPWAY_ENGINE_DEADLINE if pushes are only slow)',
        });
      }
    },
    { streaming: true },
  );
  // A stream that ends is not a push that succeeded: errors arrive as events.
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) {
    const tail = events
      .map(describePushEvent)
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
}

/** One layer's progress from a push event. */
function layerProgress(id: string, status: string, e: ProgressEvent): LayerProgress {
  const d = e.progressDetail;
  return {
    id,
    status,
    ...(d?.current === undefined ? {} : { current: d.current }),
    ...(d?.total === undefined ? {} : { total: d.total }),
  };
}

/** A readable line for a push event, or null for progress-bar noise. */
function describePushEvent(e: ProgressEvent): string | null {
  if (e.error) return `error: ${e.errorDetail?.message ?? e.error}`;
  if (e.aux?.Digest) return `digest ${e.aux.Digest}`;
  if (!e.status || (e.progressDetail && e.progressDetail.current !== undefined)) return null;
  if (e.status === 'Pushing' || e.status === 'Waiting' || e.status === 'Preparing') return null;
  return e.id ? `${e.id}: ${e.status}` : e.status;
}

/** Runs argv in the container and waits (at most `timeoutMs`) for its exit code. */
async function execIn(
  container: Docker.Container,
  execById: (id: string) => Docker.Exec,
  argv: readonly string[],
  options: { user?: string; timeoutMs: number },
): Promise<ExecOutcome> {
  const exec = await container.exec({
    Cmd: [...argv],
    AttachStdout: true,
    AttachStderr: true,
    ...(options.user ? { User: options.user } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`"${argv.join(' ')}" did not finish within ${Math.round(options.timeoutMs / 1000)}s`));
    }, options.timeoutMs);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  // The stream can end a moment before the engine records the exit code.
  // Inspected through the bounded client: the exec's own client has no call time limit.
  const bounded = execById(exec.id);
  let info = await bounded.inspect();
  for (let i = 0; i < 20 && (info.Running || info.ExitCode === null); i++) {
    await sleep(50);
    info = await bounded.inspect();
  }
  const { stdout, stderr } = demuxDockerStream(Buffer.concat(chunks));
  return { exitCode: info.ExitCode ?? -1, stdout, stderr };
}
