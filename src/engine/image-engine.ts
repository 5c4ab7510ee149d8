import type { Readable } from 'node:stream';
import type { ImageRef } from '../core/image-ref.js';
import type { ArchiveEntry, PathStat } from './container-archive.js';

/**
 * The image engine port: only the calls Slipway makes against a container engine (build,
 * inspect, tag, push, pull, and the container calls smoke needs). One implementation,
 * `dockerEngine` in ./docker-engine.ts. Unless a method says otherwise, a failure is a
 * SlipwayError: ENGINE_UNREACHABLE when the engine does not answer, else the operation's code.
 */

/** Credentials in the shape the Docker engine's push/pull `authconfig` takes. Never logged. */
export interface EngineAuth {
  readonly username?: string;
  readonly password?: string;
  readonly serveraddress?: string;
}

/**
 * Time limits of engine calls, in milliseconds: the one set of engine limits the composition
 * root passes to `dockerEngine` (from `SLIPWAY_ENGINE_IDLE_TIMEOUT` / `SLIPWAY_ENGINE_DEADLINE`).
 */
export interface EngineTimeouts {
  /** A pull or push fails when the engine reports no progress for this long. */
  readonly idleMs: number;
  /** A pull or push fails when it has not finished after this long in all. */
  readonly totalMs: number;
  /**
   * Every other call (ping, inspect, tag, create, start, exec setup, logs, archive, remove) fails
   * when the engine does not answer within this long. Builds and the output of a command run in
   * a container are bounded by their callers, not by this.
   */
  readonly callMs: number;
}

/** The defaults: 60 s without progress or answer, 30 min for a whole pull or push. */
export const DEFAULT_ENGINE_TIMEOUTS: EngineTimeouts = {
  idleMs: 60_000,
  totalMs: 30 * 60_000,
  callMs: 60_000,
};

/** Progress of one layer of a push, as the engine reports it. */
export interface LayerProgress {
  readonly id: string;
  readonly status: string;
  readonly current?: number;
  readonly total?: number;
}

/** A local image, as far as Slipway needs to know it. */
export interface ImageInfo {
  /** `sha256:` image ID. */
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /** RootFS layer diff IDs, bottom first. */
  readonly layers: readonly string[];
  readonly repoTags: readonly string[];
  /** `name@sha256:…` for every registry the image was pushed to or pulled from. */
  readonly repoDigests: readonly string[];
}

/** One build, as the engine is asked to run it. */
export interface BuildRequest {
  /** The manifest image name, for messages. */
  readonly subject: string;
  /** A tar of the build context (see build/context.ts). */
  readonly context: Readable;
  /** The Dockerfile's path inside the context tar. */
  readonly dockerfile: string;
  /** The local tag given to the result. */
  readonly tag: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly target: string | null;
  readonly noCache: boolean;
  /** Build with BuildKit instead of the classic builder. */
  readonly buildkit: boolean;
  /**
   * Images to take cached layers from (`cache-from`). BuildKit reads a registry image's inline
   * cache without pulling it; the classic builder only uses images the engine already has.
   */
  readonly cacheFrom?: readonly string[];
}

/** Why a pull failed: the registry could not be reached, it answered no, or the engine is gone. */
export class PullError extends Error {
  constructor(
    readonly kind: 'registry-unreachable' | 'pull-failed' | 'engine-unreachable',
    message: string,
  ) {
    super(message);
    this.name = 'PullError';
  }
}

/** A container to create (never started by `createContainer` itself). */
export interface ContainerSpec {
  readonly name: string;
  /** Image ID (or name) of a local image: the engine never pulls for a create. */
  readonly image: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  /** Replaces the image's entrypoint when set. */
  readonly entrypoint?: readonly string[];
  /** Replaces the image's command when set. */
  readonly command?: readonly string[];
  readonly user?: string;
  /** Named volumes by mount path (container path -> volume name). */
  readonly volumes: Readonly<Record<string, string>>;
}

/** A container's state as `inspectContainer` reports it. */
export interface ContainerState {
  readonly running: boolean;
  /** The exit code once it stopped, else null. */
  readonly exitCode: number | null;
  readonly oomKilled: boolean;
}

/** The result of a command run in a container. */
export interface ExecOutcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link ImageEngine.removeContainer}. */
export interface RemoveContainerOptions {
  /** Also remove the container's anonymous volumes (named volumes are removed with removeVolume). */
  readonly volumes?: boolean;
}

/** The engine calls Slipway makes. */
export interface ImageEngine {
  /** Resolves when the engine answers; rejects with ENGINE_UNREACHABLE otherwise. */
  ping(): Promise<void>;
  /** The image by ID or name, or null when the engine does not have it. */
  inspectImage(ref: string): Promise<ImageInfo | null>;
  /**
   * Builds, never pulling, and returns the image ID. Every log line goes to `onLine`. Fails with
   * BUILD_FAILED on any error event in the stream, and when the stream ends without the image;
   * with INTERRUPTED (or the signal's SlipwayError reason) when `signal` aborts.
   */
  build(request: BuildRequest, onLine: (line: string) => void, signal?: AbortSignal): Promise<string>;
  /** Adds the tag `target` (which must carry a tag) to a local image. */
  tag(image: string, target: ImageRef): Promise<void>;
  /** Removes a tag, never pruning the image (the caller checks other tags remain). */
  removeTag(ref: string): Promise<void>;
  /**
   * Pushes `target` and returns the digest the engine reported; every stream line goes to
   * `onLine`, and each layer's transfer progress to `onProgress`. Fails with PUSH_FAILED on any
   * error event in the stream, a missing digest, or a stall (see {@link EngineTimeouts}).
   */
  push(
    target: ImageRef,
    auth: EngineAuth,
    onLine: (line: string) => void,
    onProgress?: (progress: LayerProgress) => void,
  ): Promise<{ digest: string }>;
  /**
   * Pulls `ref` and waits for the stream to end, scanning every event. Fails with a
   * {@link PullError} whose message is already redacted by `redact`.
   */
  pull(
    ref: ImageRef,
    auth: EngineAuth,
    options?: { redact?: (text: string) => string; onStatus?: (status: string) => void },
  ): Promise<void>;
  /** Creates a named volume with labels. */
  createVolume(name: string, labels: Readonly<Record<string, string>>): Promise<void>;
  /** Removes a named volume; a missing one is not an error, one still in use is retried briefly. */
  removeVolume(name: string): Promise<void>;
  /** Creates (does not start) a container; returns its ID. */
  createContainer(spec: ContainerSpec): Promise<string>;
  /** Starts a created container. */
  startContainer(id: string): Promise<void>;
  /** The container's state. */
  inspectContainer(id: string): Promise<ContainerState>;
  /** The container's log so far (stdout and stderr interleaved), as text. */
  logs(id: string): Promise<string>;
  /** Runs argv in the running container and waits at most `timeoutMs` for its exit code. */
  exec(
    id: string,
    argv: readonly string[],
    options: { user?: string; timeoutMs: number },
  ): Promise<ExecOutcome>;
  /** Stats a path in the container without following symlinks; null when it does not exist. */
  statPath(id: string, path: string): Promise<PathStat | null>;
  /** The entries of a container directory (relative to it); null when it does not exist. */
  archive(id: string, path: string): Promise<ArchiveEntry[] | null>;
  /**
   * Force-removes a container (with its anonymous volumes unless `volumes: false`). A missing
   * container is not an error; a removal already in progress (409) is retried briefly.
   */
  removeContainer(id: string, options?: RemoveContainerOptions): Promise<void>;
}
