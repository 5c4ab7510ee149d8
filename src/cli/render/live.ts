import { createLogUpdate } from 'log-update';
import type { SlipwayEvent, Stage } from '../../core/events.js';
import { plainLine } from './plain.js';
import type { Renderer } from './renderer.js';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 120;
const BAR = 20;

/** A step under way: redrawn in place until it is done or failed. */
interface Active {
  readonly stage: Stage;
  readonly subject: string;
  readonly message: string;
  readonly started: number;
  /** The latest output line of the step (a build step, a readiness log line). */
  last: string | undefined;
  /** Push progress per layer, in the order the engine reported them. */
  readonly layers: Map<string, { status: string; current?: number; total?: number }>;
}

/** `12.3 MB`. */
function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** One layer's line: a bar while bytes move, else the engine's status. */
function layerLine(id: string, l: { status: string; current?: number; total?: number }): string {
  if (l.current !== undefined && l.total) {
    const done = Math.min(BAR, Math.round((l.current / l.total) * BAR));
    return `    ${id} ${l.status} [${'='.repeat(done)}${' '.repeat(BAR - done)}] ${size(l.current)}/${size(l.total)}`;
  }
  return `    ${id} ${l.status}`;
}

/**
 * Live progress on an interactive terminal (log-update redraws one frame in place): each step
 * under way with a spinner, its elapsed time and its latest output line (build steps, smoke
 * readiness), and every layer of a push with a progress bar. Finished steps, warnings and
 * diagnostics are written above the frame and stay in the scrollback.
 */
export function liveRenderer(
  stream: NodeJS.WritableStream,
  redact: (text: string) => string,
  now: () => number = Date.now,
): Renderer {
  const log = createLogUpdate(stream, { showCursor: true });
  const active = new Map<string, Active>();
  let tick = 0;
  let closed = false;
  const keyOf = (stage: Stage, subject: string) => `${stage}\u0000${subject}`;

  const draw = () => {
    if (closed) return;
    if (active.size === 0) {
      log.clear();
      return;
    }
    const spin = SPINNER[tick % SPINNER.length];
    const lines: string[] = [];
    for (const a of active.values()) {
      lines.push(`${spin} [${a.stage}] ${a.subject} ${a.message} (${seconds(now() - a.started)})`);
      for (const [id, l] of a.layers) lines.push(layerLine(id, l));
      if (a.last !== undefined) lines.push(`    │ ${a.last}`);
    }
    log(redact(lines.join('\n')));
  };
  const timer = setInterval(() => {
    tick++;
    draw();
  }, FRAME_MS);
  timer.unref();

  const persist = (text: string) => {
    if (closed) {
      stream.write(`${redact(text)}\n`);
      return;
    }
    // Above the frame, unwrapped (log-update's persist hard-wraps to the width; the terminal wraps softly).
    log.clear();
    stream.write(`${redact(text)}\n`);
    draw();
  };

  const finish = (e: Extract<SlipwayEvent, { kind: 'step-done' | 'step-failed' }>) => {
    const key = keyOf(e.stage, e.subject);
    const a = active.get(key);
    active.delete(key);
    const mark = e.kind === 'step-failed' ? '✖' : e.skipped ? '–' : '✔';
    const took = a ? ` (${seconds(now() - a.started)})` : '';
    persist(`${mark} ${plainLine(e) ?? ''}${took}`);
  };

  return {
    event(e) {
      switch (e.kind) {
        case 'step-start':
          active.set(keyOf(e.stage, e.subject), {
            stage: e.stage,
            subject: e.subject,
            message: e.message,
            started: now(),
            last: undefined,
            layers: new Map(),
          });
          draw();
          return;
        case 'step-done':
        case 'step-failed':
          finish(e);
          return;
        case 'progress': {
          const a = active.get(keyOf(e.stage, e.subject));
          if (!a) return;
          const before = a.layers.get(e.id)?.status;
          a.layers.set(e.id, {
            status: e.status,
            ...(e.current === undefined ? {} : { current: e.current }),
            ...(e.total === undefined ? {} : { total: e.total }),
          });
          // A new layer or a new status shows at once (a fast push may end before the next frame);
          // byte counts wait for the frame.
          if (before !== e.status) draw();
          return;
        }
        case 'output': {
          const a = active.get(keyOf(e.stage, e.subject));
          if (a) {
            // A step's output shows as its latest line; the full log is for plain output and --verbose.
            a.last = e.line;
            return;
          }
          persist(plainLine(e) ?? '');
          return;
        }
        case 'log': {
          const a = e.subject === undefined ? undefined : active.get(keyOf(e.stage, e.subject));
          if (a && e.level === 'info') a.last = e.message;
          persist(plainLine(e) ?? '');
          return;
        }
      }
    },
    line: (text) => persist(text),
    pause() {
      log.clear();
    },
    close() {
      if (closed) return;
      clearInterval(timer);
      log.clear();
      closed = true;
    },
  };
}
