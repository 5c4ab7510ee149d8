// Turns a run's summary into bench/RESULTS.md, the README block and the issue's targets.
import {
  fmtKb,
  fmtMs,
  fmtRatio,
  type RowResult,
  replaceReadmeBlock,
  resultsTable,
  type Target,
  targetsTable,
} from './stats.js';

/** Everything a run measured and the machine it ran on (bench/results.json). */
export interface Summary {
  readonly runId: string;
  readonly date: string;
  readonly command: string;
  readonly slipwayAs: string;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGiB: number;
    readonly platform: string;
    readonly loadAverageAtStart: readonly number[];
    readonly loadAverageAtEnd: readonly number[];
  };
  readonly versions: Readonly<Record<string, string>>;
  readonly repetitions: { readonly timed: number; readonly warmup: number };
  readonly memoryMethod: string;
  readonly totalSeconds: number;
  readonly rows: readonly RowResult[];
  readonly notes: readonly string[];
}

const byId = (rows: readonly RowResult[], id: string) => rows.find((r) => r.id === id && r.status === 'ok');

/** The issue's targets (item 4 and the memory claim), judged from the rows of this run. */
export function targets(rows: readonly RowResult[]): Target[] {
  const out: Target[] = [];
  for (const [id, where] of [
    ['1a', 'file://'],
    ['2a', 'http'],
  ] as const) {
    const r = byId(rows, id);
    out.push({
      name: `cold staging, 20 templates over ${where}, vs the sequential clone script`,
      wanted: '>= 1.5x faster',
      measured: r ? fmtRatio(r.ratio) : 'row did not run',
      met: r?.ratio === undefined ? null : r.ratio >= 1.5,
    });
  }
  const pack = byId(rows, '3a');
  out.push({
    name: 'context packing throughput vs `tar -c` (200 MB, 20,000 files)',
    wanted: '>= 0.8x',
    measured: pack ? fmtRatio(pack.ratio) : 'row did not run',
    met: pack?.ratio === undefined ? null : pack.ratio >= 0.8,
  });
  const packRss = pack?.slipway?.peakRssKb ?? null;
  out.push({
    name: 'context packing memory (flat: does not hold the context)',
    wanted: 'peak RSS < 160 MiB for a 200 MB context',
    measured: fmtKb(packRss),
    met: packRss === null ? null : packRss < 160 * 1024,
  });
  const r50 = byId(rows, '5a');
  const r500 = byId(rows, '6a');
  const t50 = r50?.slipway?.medianMs;
  const t500 = r500?.slipway?.medianMs;
  const same = t50 !== undefined && t500 !== undefined ? Math.abs(t500 - t50) / t50 : undefined;
  out.push({
    name: 'retag cost, 500 MB image vs 50 MB image',
    wanted: 'within 20%',
    measured:
      same === undefined
        ? 'rows did not run'
        : `${fmtMs(t50)} vs ${fmtMs(t500)} (${Math.round(same * 100)}%)`,
    met: same === undefined ? null : same <= 0.2,
  });
  const floor = byId(rows, '5d');
  const floorNote =
    floor?.slipway && floor.peer
      ? ` (Node.js start-up alone: ${fmtMs(floor.slipway.medianMs)}, skopeo's whole copy: ${fmtMs(floor.peer.medianMs)})`
      : '';
  for (const r of [r50, r500]) {
    if (!r) continue;
    out.push({
      name: `retag vs \`skopeo copy\`, ${r.title.match(/\d+ MB/)?.[0] ?? ''}`,
      wanted: 'no slower (ratio >= 1.0x)',
      measured: `${fmtRatio(r.ratio)}${floorNote}`,
      met: r.ratio === undefined ? null : r.ratio >= 1,
    });
  }
  const m100 = byId(rows, '9a')?.slipway?.peakRssKb ?? null;
  const m1g = byId(rows, '9b')?.slipway?.peakRssKb ?? null;
  out.push({
    name: 'staging memory, 1 GB template set vs 100 MB set',
    wanted: 'flat (1 GB peak RSS within 25% of the 100 MB one)',
    measured: m100 === null || m1g === null ? 'rows did not run' : `${fmtKb(m100)} vs ${fmtKb(m1g)}`,
    met: m100 === null || m1g === null ? null : m1g <= m100 * 1.25,
  });
  return out;
}

function machine(s: Summary): string {
  const m = s.machine;
  return [
    `- Machine: ${m.cpus} x ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}; load average ${m.loadAverageAtStart.join(' / ')} at start, ${m.loadAverageAtEnd.join(' / ')} at end`,
    `- Versions: ${Object.entries(s.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ')}`,
    `- Run ${s.runId}, ${s.date}, \`${s.command}\`: ${s.repetitions.timed} timed repetitions per variant after ${s.repetitions.warmup} warm-up (fewer or more where a group says so), variants interleaved; ${s.totalSeconds} s in all`,
    `- Slipway ran as ${s.slipwayAs}`,
    `- Memory: ${s.memoryMethod}`,
  ].join('\n');
}

/** The report's three outputs. */
export interface Report {
  readonly markdown: string;
  readonly targets: readonly Target[];
  /** README.md with its Performance block rewritten. */
  readme(current: string): string;
}

/** Builds RESULTS.md, the targets and the README block from a run. */
export function buildReport(s: Summary): Report {
  const t = targets(s.rows);
  const does = new Map<string, string>();
  for (const r of s.rows) {
    if (r.slipway) does.set(`Slipway: ${r.slipway.label}`, r.slipway.does);
    if (r.peer) does.set(`peer: ${r.peer.label}`, r.peer.does);
  }
  const markdown = [
    '# Benchmark results',
    '',
    'Written by `npm run bench`; every figure below comes from the run described here (see',
    '`bench/results.json` for every sample). Ratio = peer median / Slipway median: above 1, Slipway is faster.',
    'Spread = half the min-max range over the median.',
    '',
    machine(s),
    '',
    '## Results',
    '',
    resultsTable(s.rows),
    '',
    '## Targets (issue 15, item 4)',
    '',
    targetsTable(t),
    '',
    '## What each side does',
    '',
    ...[...does].map(([who, what]) => `- **${who}**: ${what}`),
    '',
    '## Notes from the run',
    '',
    ...s.notes.map((n) => `- ${n}`),
    '',
    '## Caveats',
    '',
    '- Both sides talk to the same dockerd and registry; their work is in the wall-clock times but in neither memory column.',
    '- The loopback git http-backend runs inside the bench process; its CGI children are not counted in either memory column.',
    '- On a shared or busy machine single repetitions absorb other work; compare the spread before trusting a ratio.',
    '- What a variant leaves behind (staged trees, clones, caches) is set aside and deleted after the last measurement, not before the next variant: on an ext4 without a journal the inode allocator skips inodes deleted in the last minutes, so creating files right after removing 10,000 costs several times more, and a deletion between variants would bill that to whichever side runs next (bench/trash.ts).',
    '',
  ].join('\n');
  const block = [
    `Latest run (${s.date.slice(0, 10)}, ${s.machine.cpus} CPUs, load ${s.machine.loadAverageAtStart[0]} at start; full report with spreads, memory and what each side does in [bench/RESULTS.md](bench/RESULTS.md)):`,
    '',
    resultsTable(s.rows),
    '',
    targetsTable(t),
    '',
    `Reproduce: \`npm run services up && npm run bench\` (about 20 minutes; \`BENCH_REPS=3 npm run bench\` for a quicker run). It rewrites this block, \`bench/RESULTS.md\` and \`bench/results.json\`. Slipway runs under the Node.js that runs the bench (this run: ${s.versions.node}); put the one you deploy on PATH first.`,
  ].join('\n');
  return { markdown, targets: t, readme: (current) => replaceReadmeBlock(current, block) };
}
