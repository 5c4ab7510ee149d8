import type { CliIO } from '../cli.js';
import type { liveRenderer } from './live.js';
import { ndjsonRenderer, plainRenderer } from './plain.js';
import type { Renderer, RendererKind } from './renderer.js';

/**
 * The renderer of a kind, writing to the CLI's stderr (live: to its terminal stream, with `live`,
 * which the caller loads only when there is a terminal: log-update is not part of start-up).
 */
export function openRenderer(
  kind: RendererKind,
  io: Pick<CliIO, 'stderr' | 'terminal'>,
  redact: (text: string) => string,
  live?: typeof liveRenderer,
): Renderer {
  if (kind === 'live' && io.terminal && live) return live(io.terminal, redact);
  if (kind === 'ndjson') return ndjsonRenderer(io.stderr, redact);
  return plainRenderer(io.stderr, redact);
}
