// The pure parts of the bench: statistics, ratios, formatting, the Markdown tables and the
// README block. No I/O here, so bench/stats.test.ts can pin them down.

/** The median of the samples (NaN when there are none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** Spread of the samples: min, max, and (max - min) / median as a fraction (0 for one sample). */
export interface Spread {
  readonly min: number;
  readonly max: number;
  readonly relative: number;
}

/** The spread of a sample set (NaNs for an empty one). */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { min: Number.NaN, max: Number.NaN, relative: Number.NaN };
  const min = Math.min(...values);
  const max = Math.max(...values);
  const m = median(values);
  return { min, max, relative: m > 0 ? (max - min) / m : 0 };
}

/** peer / slipway, rounded to 2 decimals: above 1 Slipway is faster. NaN when either is missing. */
export function ratio(peerMs: number, slipwayMs: number): number {
  if (!Number.isFinite(peerMs) || !Number.isFinite(slipwayMs) || slipwayMs <= 0) return Number.NaN;
  return Math.round((peerMs / slipwayMs) * 100) / 100;
}

/** Milliseconds for a table: 3 significant-ish digits, seconds above 10 s. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return 'n/a';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** KiB for a table, as MiB from 10 MiB up. */
export function fmtKb(kb: number | null | undefined): string {
  if (kb === null || kb === undefined || !Number.isFinite(kb)) return 'n/a';
  return kb >= 10 * 1024 ? `${(kb / 1024).toFixed(0)} MiB` : `${Math.round(kb)} KiB`;
}

/** A ratio as `1.8x`, or `n/a`. */
export function fmtRatio(r: number | null | undefined): string {
  return r === null || r === undefined || !Number.isFinite(r) ? 'n/a' : `${r.toFixed(2)}x`;
}

/** A relative spread as `±12%` (half the min-max range over the median). */
export function fmtSpread(s: Spread | null | undefined): string {
  if (!s || !Number.isFinite(s.relative)) return 'n/a';
  return `±${Math.round((s.relative / 2) * 100)}%`;
}

/** One measured side of a row. */
export interface SideResult {
  readonly label: string;
  readonly does: string;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly spread: Spread;
  /** Median over repetitions of the peak RSS of the whole child process tree, KiB. */
  readonly peakRssKb: number | null;
}

/** A table row: Slipway against one peer, or a row that could not run and why. */
export interface RowResult {
  readonly id: string;
  readonly group: string;
  readonly title: string;
  readonly status: 'ok' | 'not-available' | 'failed';
  /** Why the row did not run (status not ok). */
  readonly reason?: string;
  readonly slipway?: SideResult;
  readonly peer?: SideResult;
  /** peer / slipway medians. */
  readonly ratio?: number;
}

/** One of the targets, judged from the run. */
export interface Target {
  readonly name: string;
  readonly wanted: string;
  readonly measured: string;
  readonly met: boolean | null;
}

/** Escapes a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table from a header and rows of cells; `right` lists the right-aligned columns. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number> = new Set(),
): string {
  const align = header.map((_, i) => (right.has(i) ? '---:' : '---'));
  return [header, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

/** The results table: one line per row, not-available and failed rows saying why. */
export function resultsTable(rows: readonly RowResult[]): string {
  const header = [
    '#',
    'scenario',
    'Slipway',
    'median',
    'spread',
    'peer',
    'median',
    'spread',
    'peer / Slipway',
    'Slipway peak RSS',
    'peer peak RSS',
  ];
  const body = rows.map((r) => {
    if (r.status !== 'ok' || !r.slipway || !r.peer) {
      const why = r.status === 'not-available' ? 'not available in this build' : 'failed';
      return [r.id, r.title, `${why}: ${r.reason ?? ''}`.trim(), '', '', '', '', '', '', '', ''];
    }
    return [
      r.id,
      r.title,
      r.slipway.label,
      fmtMs(r.slipway.medianMs),
      fmtSpread(r.slipway.spread),
      r.peer.label,
      fmtMs(r.peer.medianMs),
      fmtSpread(r.peer.spread),
      fmtRatio(r.ratio),
      fmtKb(r.slipway.peakRssKb),
      fmtKb(r.peer.peakRssKb),
    ];
  });
  return markdownTable(header, body, new Set([3, 4, 6, 7, 8, 9, 10]));
}

/** The targets table: wanted, measured, met or not. */
export function targetsTable(targets: readonly Target[]): string {
  return markdownTable(
    ['target', 'wanted', 'measured', 'met'],
    targets.map((t) => [
      t.name,
      t.wanted,
      t.measured,
      t.met === null ? 'not measured' : t.met ? 'yes' : 'NO',
    ]),
  );
}

/** Markers around the README block the run rewrites. */
export const README_BEGIN = '<!-- bench:begin (written by `npm run bench`; do not edit by hand) -->';
export const README_END = '<!-- bench:end -->';

/** `readme` with the text between the bench markers replaced by `block`; throws when the markers are missing. */
export function replaceReadmeBlock(readme: string, block: string): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) throw new Error('README.md has no bench block markers');
  return `${readme.slice(0, begin + README_BEGIN.length)}\n${block.trim()}\n${readme.slice(end)}`;
}
