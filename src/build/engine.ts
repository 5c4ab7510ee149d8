import type { Readable } from 'node:stream';

/** A local image, as far as the build needs to know it. */
export interface BuiltImageInfo {
  /** `sha256:` image ID. */
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /** RootFS layer diff IDs, bottom first. */
  readonly layers: readonly string[];
}

/** One build, as the engine is asked to run it. */
export interface BuildRequest {
  /** The manifest image name, for messages. */
  readonly subject: string;
  /** A tar of the build context (see preflight/context.ts). */
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
}

/** The engine calls a build makes: inspect an image, build one. */
export interface BuildEngine {
  /** The image by ID or name, or null when the engine does not have it. */
  inspectImage(ref: string): Promise<BuiltImageInfo | null>;
  /**
   * Builds, never pulling, and returns the image ID. Every log line goes to `onLine`. Fails with
   * BUILD_FAILED on any error event in the stream, and when the stream ends without an image ID.
   */
  build(request: BuildRequest, onLine: (line: string) => void, signal?: AbortSignal): Promise<string>;
}
