/**
 * Reading the engine's build stream (newline-delimited JSON messages). A stream that ends is not
 * a build that succeeded: every `{error, errorDetail}` message fails it, and success needs an
 * image ID (`aux.ID`, or `Successfully built <id>` from older engines). Treating the end of the
 * stream as success is testcontainers-node's known image-build bug.
 */

/** One message of the build stream (classic builder, or BuildKit as dockerode's `followProgress` decodes it). */
export interface BuildMessage {
  stream?: string;
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: unknown;
}

/** How many log lines a failure report carries. */
export const TAIL_LINES = 20;

/** Accumulates a build's messages: log lines, the current step, the image ID, the first error. */
export class BuildLog {
  /** The last {@link TAIL_LINES} log lines. */
  readonly tail: string[] = [];
  /** The step being executed, e.g. `Step 3/5 : RUN make` or BuildKit's `[2/4] RUN make`. */
  step: string | null = null;
  /** The image ID the engine reported. */
  imageId: string | null = null;
  /** The first error message in the stream. */
  error: string | null = null;
  private partial = '';

  constructor(private readonly onLine: (line: string) => void = () => {}) {}

  /** Feeds one decoded message. */
  push(msg: BuildMessage): void {
    if (msg.error !== undefined || msg.errorDetail !== undefined) {
      this.error ??= msg.errorDetail?.message ?? msg.error ?? 'unknown build error';
      return;
    }
    const aux = msg.aux as { ID?: unknown } | undefined;
    if (aux && typeof aux.ID === 'string') this.imageId = aux.ID;
    if (typeof msg.stream === 'string') this.text(msg.stream);
    else if (typeof msg.status === 'string') this.line(msg.id ? `${msg.id}: ${msg.status}` : msg.status);
  }

  /** Flushes a trailing partial line. */
  end(): void {
    if (this.partial !== '') this.line(this.partial);
    this.partial = '';
  }

  private text(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.line(l.replace(/\r$/, ''));
  }

  private line(l: string): void {
    const trimmed = l.trimEnd();
    if (trimmed === '') return;
    const step = /^Step \d+\/\d+ : .*/.exec(trimmed);
    if (step) this.step = trimmed;
    // BuildKit progress, as dockerode's followProgress decodes it: `[<vertex digest>] [2/4] RUN make`.
    const vertex = /^\[[0-9a-z:]{12}\] (.*)$/.exec(trimmed);
    if (vertex?.[1] && !vertex[1].startsWith('[internal]')) this.step = vertex[1];
    const built = /^(?:Successfully built|Built image:) ((?:sha256:)?[0-9a-f]{12,64})$/.exec(trimmed);
    if (built && this.imageId === null) this.imageId = built[1] ?? null;
    this.tail.push(trimmed);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.onLine(trimmed);
  }
}
