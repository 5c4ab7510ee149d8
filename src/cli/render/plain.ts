import type { SlipwayEvent } from '../../core/events.js';
import type { Renderer } from './renderer.js';

/** One event as a plain line (no timestamp), or null for events plain output leaves out (layer progress). */
export function plainLine(e: SlipwayEvent): string | null {
  const subject = 'subject' in e && e.subject ? ` ${e.subject}` : '';
  switch (e.kind) {
    case 'log':
      return `[${e.stage}]${subject} ${e.level === 'info' ? '' : `${e.level}: `}${e.message}`;
    case 'step-start':
      return `[${e.stage}]${subject} ${e.message}`;
    case 'step-done':
      return `[${e.stage}]${subject} ${e.skipped ? 'skipped: ' : 'ok: '}${e.message}`;
    case 'step-failed':
      return `[${e.stage}]${subject} FAILED: ${e.message}`;
    case 'output':
      return `[${e.stage}]${subject} | ${e.line}`;
    case 'progress':
      return null;
  }
}

/** `2026-05-01T08:40:12.345Z`: the UTC time a plain line is prefixed with. */
export function timestamp(at: Date): string {
  return at.toISOString();
}

/**
 * Plain lines on stderr, one per event, each prefixed with its UTC time: for pipes, files and CI
 * logs. Diagnostic lines (errors, reports) are written as they are.
 */
export function plainRenderer(
  write: (text: string) => void,
  redact: (text: string) => string,
  now: () => Date = () => new Date(),
): Renderer {
  return {
    event(e) {
      const line = plainLine(e);
      if (line !== null) write(`${timestamp(now())} ${redact(line)}\n`);
    },
    line: (text) => write(`${redact(text)}\n`),
    pause() {},
    close() {},
  };
}

/** One JSON document per event (`--log-format ndjson`), exactly as before; layer progress is left out. */
export function ndjsonRenderer(write: (text: string) => void, redact: (text: string) => string): Renderer {
  return {
    event(e) {
      if (e.kind === 'progress') return;
      write(`${redact(JSON.stringify(e))}\n`);
    },
    line: (text) => write(`${redact(text)}\n`),
    pause() {},
    close() {},
  };
}
