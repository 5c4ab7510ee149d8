import { formatAge } from './flags.js';
import type { ImageStatus, StatusReport } from './types.js';

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

function ago(report: StatusReport, iso: string | null): string {
  if (iso === null) return '';
  return ` (${formatAge((Date.parse(report.checkedAt) - Date.parse(iso)) / 1000)} ago)`;
}

/** One row per image: the columns of the table and of its Markdown twin. */
function rows(report: StatusReport): string[][] {
  const header = [
    'IMAGE',
    'REPOSITORY',
    report.tag.toUpperCase(),
    'BUILT',
    'REVISION',
    'INPUTS',
    'PINS',
    'FLAGS',
  ];
  const body = report.images.map((i) => [
    i.name,
    repositoryCell(report, i),
    i.latest ? `${short(i.latest.digest)} smoke ${i.latest.smoke.passed ? 'passed' : 'NOT passed'}` : '-',
    i.latest?.created ? `${i.latest.created}${ago(report, i.latest.created)}` : '-',
    i.latest?.revision?.slice(0, 12) ?? '-',
    i.latest === null ? '-' : i.changes.length === 0 ? 'up to date' : `${i.changes.length} changed`,
    pinsCell(i),
    i.flags.length === 0 ? 'ok' : [...new Set(i.flags.map((f) => f.kind))].join(','),
  ]);
  return [header, ...body];
}

function repositoryCell(report: StatusReport, i: ImageStatus): string {
  const r = i.repository;
  if (!r.exists) return `${r.name} (missing)`;
  const count = r.imageCount === null ? '? images' : `${r.imageCount} image${r.imageCount === 1 ? '' : 's'}`;
  const newest = r.newestPush
    ? `, newest ${r.newestPushSource === 'pushed' ? 'push' : 'build'}${ago(report, r.newestPush)}`
    : '';
  return `${r.name} (${count}${newest})`;
}

function pinsCell(i: ImageStatus): string {
  if (i.pins.length === 0) return '-';
  return i.pins
    .map((p) => {
      if (p.pinned === null) return `${p.runtime}: not pinned`;
      const facts = [
        short(p.pinned.digest),
        p.resolves === false ? 'dangling' : p.resolves === null ? 'unchecked' : 'resolves',
        p.smoke?.passed ? 'smoked' : 'not smoked',
        p.equalsLatest ? '= latest' : '!= latest',
      ];
      return `${p.runtime}: ${facts.join(' ')}`;
    })
    .join('; ');
}

function flagLines(report: StatusReport): string[] {
  if (report.flags.length === 0) return [`no flags: every image is pushed, current, pinned and verified`];
  return report.flags.flatMap((f) => [`${f.kind} ${f.image} ${f.subject}: ${f.reason}`, `  hint: ${f.hint}`]);
}

/** The report as an aligned plain-text table, then one line per flag with its hint. */
export function statusTable(report: StatusReport): string[] {
  const table = rows(report);
  const widths = table[0]?.map((_, c) => Math.max(...table.map((r) => (r[c] ?? '').length))) ?? [];
  const lines = table.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  return [
    `status of ${report.env} in ${report.registry} (pins: ${report.pinStore}) at ${report.checkedAt}`,
    ...lines,
    '',
    ...flagLines(report),
  ];
}

const md = (cell: string) => cell.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** The same report as Markdown (for the Actions job summary): a table, then the flags as a list. */
export function statusMarkdown(report: StatusReport): string {
  const [header = [], ...body] = rows(report);
  const lines = [
    `### Slipway status: ${report.env} ${report.ok ? 'ok' : `${report.flags.length} flag${report.flags.length === 1 ? '' : 's'}`}`,
    '',
    `Registry \`${report.registry}\`, pins \`${report.pinStore}\`, checked ${report.checkedAt}.`,
    '',
    `| ${header.map(md).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((r) => `| ${r.map(md).join(' | ')} |`),
    '',
    ...(report.flags.length === 0
      ? ['No flags: every image is pushed, current, pinned and verified.']
      : report.flags.map(
          (f) => `- **${f.kind}** \`${f.image}\` ${md(f.subject)}: ${md(f.reason)}. _Hint:_ ${md(f.hint)}`,
        )),
  ];
  return `${lines.join('\n')}\n`;
}
