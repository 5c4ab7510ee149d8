import type { SlipwayEvent } from '../../core/events.js';

/** How the CLI shows progress on stderr: chosen once per run by {@link chooseRenderer}. */
export interface Renderer {
  /** One progress event from the library. */
  event(e: SlipwayEvent): void;
  /** A diagnostic line (a warning, an error report, a smoke report line). */
  line(text: string): void;
  /** Takes any live display off the terminal, before the command prints its result. */
  pause(): void;
  /** Ends the display for good (the run is over). */
  close(): void;
}

/** Which renderer a run gets. */
export type RendererKind = 'ndjson' | 'live' | 'plain';

/** What {@link chooseRenderer} looks at. */
export interface RendererChoice {
  readonly logFormat: 'plain' | 'ndjson';
  /** `CI` is set (plain, timestamped lines even on a terminal). */
  readonly ci: boolean;
  /** stderr is an interactive terminal. */
  readonly tty: boolean;
  /** `TERM` from the environment (`dumb` cannot redraw). */
  readonly term: string | undefined;
}

/**
 * NDJSON when asked; live progress only on an interactive terminal outside CI that can redraw;
 * plain timestamped lines everywhere else (pipes, files, CI logs).
 */
export function chooseRenderer(c: RendererChoice): RendererKind {
  if (c.logFormat === 'ndjson') return 'ndjson';
  if (c.tty && !c.ci && c.term !== 'dumb') return 'live';
  return 'plain';
}
