import { summary } from '@actions/core';
import type { ErrorDetail } from '../../core/errors.js';
import type { SmokeReport } from '../../smoke/report.js';

/** What one CLI run did, as the job summary shows it. */
export interface RunRecord {
  /** `release`, `pins promote`, … */
  readonly command: string;
  readonly exitCode: number;
  /** The result document the command printed (its `--json` form), if any. */
  readonly result?: unknown;
  /** Every smoke report of the run (release smokes several digests). */
  readonly smoke: readonly SmokeReport[];
  /** Markdown sections a command renders itself (status's table). */
  readonly sections?: readonly string[];
  readonly error?: {
    readonly code: string;
    readonly message: string;
    readonly hint?: string;
    readonly details: readonly ErrorDetail[];
    /** The pipeline stage that failed. */
    readonly stage?: string;
    /** What the failure left as it was (moving tags, pins, …). */
    readonly untouched?: string;
  };
}

interface ImageRow {
  name?: string;
  repository?: string;
  digest?: string;
  tags?: string[];
  smoke?: string;
  id?: string;
}
interface PinRow {
  runtime?: string;
  applied?: boolean;
  pin?: { image?: string; digest?: string } | null;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const code = (s: string) => `<code>${esc(s)}</code>`;

/**
 * The Markdown job summary of a run, rendered with @actions/core's summary builder (the HTML and
 * Markdown GitHub renders). The builder is only used to render: the caller appends the text to the
 * file named by the CLI's own environment, never through the builder's process.env lookup.
 */
export function renderSummary(run: RunRecord): string {
  const s = summary.emptyBuffer();
  const ok = run.exitCode === 0;
  s.addHeading(`${ok ? '✅' : '❌'} slipway ${esc(run.command)}: ${ok ? 'ok' : 'failed'}`, 2);
  const result = (run.result ?? {}) as { images?: ImageRow[]; pins?: PinRow[]; env?: string; sha?: string };
  if (result.env || result.sha)
    s.addRaw(`env ${code(result.env ?? '')}, revision ${code(result.sha ?? '')}`, true);
  const images = Array.isArray(result.images) ? result.images : [];
  if (images.some((i) => i.digest)) {
    s.addHeading('Images', 3).addTable([
      [
        { data: 'image', header: true },
        { data: 'digest', header: true },
        { data: 'tags', header: true },
        { data: 'smoke', header: true },
      ],
      ...images.map((i) => [
        esc(i.name ?? ''),
        i.digest ? code(`${i.repository ?? ''}@${i.digest}`) : '—',
        (i.tags ?? []).map(code).join(' ') || '—',
        esc(i.smoke ?? smokeOf(run.smoke, i.name)) || '—',
      ]),
    ]);
  }
  for (const r of run.smoke) {
    s.addHeading(`Smoke ${esc(r.imageName)}: ${r.skipped ? 'skipped' : r.passed ? 'passed' : 'FAILED'}`, 3);
    if (r.digest) s.addRaw(code(r.digest), true);
    if (r.failure) s.addRaw(`<p>${esc(`${r.failure.code}: ${r.failure.message}`)}</p>`, true);
    if (r.assertions.length > 0)
      s.addTable([
        [
          { data: 'assertion', header: true },
          { data: 'kind', header: true },
          { data: 'result', header: true },
          { data: 'detail', header: true },
        ],
        ...r.assertions.map((a) => [
          esc(a.name),
          a.kind,
          a.passed ? '✅ pass' : '❌ fail',
          esc(a.message) || '—',
        ]),
      ]);
  }
  for (const section of run.sections ?? []) s.addRaw(`\n\n${section}\n`, true);
  const pins = Array.isArray(result.pins) && (run.sections ?? []).length === 0 ? result.pins : [];
  if (pins.length > 0) {
    s.addHeading('Pins', 3).addTable([
      [
        { data: 'runtime', header: true },
        { data: 'moved', header: true },
        { data: 'pin', header: true },
      ],
      ...pins.map((p) => [
        esc(p.runtime ?? ''),
        p.applied ? 'moved' : 'unchanged',
        p.pin?.image || p.pin?.digest ? code(p.pin?.image ?? p.pin?.digest ?? '') : '—',
      ]),
    ]);
  }
  if (run.error) {
    const e = run.error;
    s.addHeading(`Failed${e.stage ? ` at ${esc(e.stage)}` : ''}: ${esc(e.code)}`, 3);
    s.addCodeBlock(e.message);
    if (e.details.length > 0)
      s.addList(
        e.details.map((d) => `${code(d.at)} ${esc(d.message)}${d.hint ? ` (hint: ${esc(d.hint)})` : ''}`),
      );
    if (e.untouched) s.addRaw(`<p><b>Left untouched:</b> ${esc(e.untouched)}</p>`, true);
    if (e.hint) s.addRaw(`<p><b>Hint:</b> ${esc(e.hint)}</p>`, true);
  } else if (
    run.result !== undefined &&
    images.length === 0 &&
    run.smoke.length === 0 &&
    pins.length === 0 &&
    (run.sections ?? []).length === 0
  ) {
    s.addDetails('result', `\n\n\`\`\`json\n${JSON.stringify(run.result, null, 2)}\n\`\`\`\n\n`);
  }
  const text = s.stringify();
  s.emptyBuffer();
  return text;
}

function smokeOf(reports: readonly SmokeReport[], name: string | undefined): string {
  const r = reports.find((x) => x.imageName === name);
  return r ? (r.passed ? 'passed' : 'failed') : '';
}
