import type { CliIO } from '../cli.js';
import { liveRenderer } from './live.js';
import { ndjsonRenderer, plainRenderer } from './plain.js';
import type { Renderer, RendererKind } from './renderer.js';

/** The renderer of a kind, writing to the CLI's stderr (live: to its terminal stream). */
export function openRenderer(
  kind: RendererKind,
  io: Pick<CliIO, 'stderr' | 'terminal'>,
  redact: (text: string) => string,
): Renderer {
  if (kind === 'live' && io.terminal) return liveRenderer(io.terminal, redact);
  if (kind === 'ndjson') return ndjsonRenderer(io.stderr, redact);
  return plainRenderer(io.stderr, redact);
}
