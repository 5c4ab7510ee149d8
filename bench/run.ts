// `npm run bench`: Slipway side by side with the peer tool (the docker and git CLIs) in one run.
//
// For every scenario group: untimed setup (push an image, warm a cache, build a plan), one
// untimed warm-up of every variant, BENCH_REPS timed repetitions (default 9) with the variants
// interleaved and their order rotated each repetition, then BENCH_MEM_REPS (default 3) untimed
// memory repetitions. Reported per scenario: median ms of each side, ratio = peer / Slipway
// (> 1: Slipway is faster), Slipway's in-process peak RSS delta and the peer's summed child
// maxRSS (GNU time). Results are printed and written to bench/results.json.
//
// Needs the local services (`npm run services up`): Docker Engine, the registry on
// 127.0.0.1:5000 and the root image slipway.local/root:busybox. Creates only `bench/...`
// repositories in the registry and removes every local image, tag and temp dir it made.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  findGnuTime,
  type Group,
  measuringRunner,
  median,
  peakMemoryDelta,
  plainRunner,
  type Variant,
} from './harness.js';
import { buildGroup } from './scenarios/build.js';
import type { BenchConfig } from './scenarios/config.js';
import { retagGroup } from './scenarios/retag.js';
import { stageGroup } from './scenarios/stage.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const REPS = positiveInt(process.env.BENCH_REPS, 9);
const MEM_REPS = positiveInt(process.env.BENCH_MEM_REPS, 3);

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const config: BenchConfig = {
  repo,
  runId: randomBytes(4).toString('hex'),
  registryAddr: process.env.SLIPWAY_REGISTRY_ADDR ?? '127.0.0.1:5000',
  rootImage: process.env.SLIPWAY_ROOT_IMAGE ?? 'slipway.local/root:busybox',
  sha: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim(),
};

interface VariantResult {
  readonly key: string;
  readonly label: string;
  readonly does: string;
  readonly samplesMs: number[];
  readonly medianMs: number;
  /** Slipway: median in-process peak RSS delta. Peer: median over memory reps of the summed child maxRSS. */
  readonly memoryKb: number | null;
  /** Slipway only: median in-process peak V8 heap-used delta. */
  readonly heapKb: number | null;
}

interface RowResult {
  readonly id: string;
  readonly title: string;
  readonly slipway: VariantResult;
  readonly peer: VariantResult;
  /** peer median / Slipway median: > 1 means Slipway is faster. */
  readonly ratio: number;
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function preflight(): Promise<void> {
  const problems: string[] = [];
  const docker = await plainRunner.run('docker', ['info', '--format', '{{.ServerVersion}}'], {
    allowFail: true,
  });
  if (docker.code !== 0) problems.push('the Docker engine does not answer');
  else {
    const root = await plainRunner.run('docker', ['image', 'inspect', config.rootImage], { allowFail: true });
    if (root.code !== 0) problems.push(`the root image ${config.rootImage} is missing`);
  }
  try {
    const res = await fetch(`http://${config.registryAddr}/v2/`);
    await res.body?.cancel();
    if (res.status !== 200 && res.status !== 401) problems.push(`the registry answered ${res.status}`);
  } catch {
    problems.push(`no registry answers at ${config.registryAddr}`);
  }
  if (problems.length > 0) {
    throw new Error(`${problems.join('; ')}. Start the local services: npm run services up`);
  }
}

/** Milliseconds of one repetition of `variant` (before/after untimed). */
async function timed(variant: Variant, rep: number): Promise<number> {
  await variant.before?.(rep);
  const start = performance.now();
  await variant.run(rep, plainRunner);
  const ms = performance.now() - start;
  await variant.after?.(rep);
  return ms;
}

interface MemorySample {
  readonly kb: number | null;
  readonly heapKb: number | null;
}

async function memory(variant: Variant, rep: number, timeBin: string | null): Promise<MemorySample> {
  await variant.before?.(rep);
  let sample: MemorySample = { kb: null, heapKb: null };
  if (variant.side === 'slipway') {
    const delta = await peakMemoryDelta(() => variant.run(rep, plainRunner));
    sample = { kb: delta.rssKb, heapKb: delta.heapKb };
  } else if (timeBin) {
    const runner = await measuringRunner(timeBin);
    try {
      await variant.run(rep, runner);
      sample = { kb: runner.maxRssKb.reduce((a, b) => a + b, 0), heapKb: null };
    } finally {
      await runner.dispose();
    }
  } else {
    await variant.run(rep, plainRunner);
  }
  await variant.after?.(rep);
  return sample;
}

async function runGroup(group: Group, timeBin: string | null): Promise<RowResult[]> {
  const started = performance.now();
  log(`${group.name}: setup`);
  await group.setup();
  try {
    const samples = new Map<string, number[]>(group.variants.map((v) => [v.key, []]));
    const mem = new Map<string, number[]>(group.variants.map((v) => [v.key, []]));
    const heap = new Map<string, number[]>(group.variants.map((v) => [v.key, []]));
    let rep = 0;
    log(`${group.name}: warm-up`);
    for (const v of group.variants) await timed(v, rep);
    rep += 1;
    for (let i = 0; i < REPS; i += 1, rep += 1) {
      log(`${group.name}: repetition ${i + 1}/${REPS}`);
      const n = group.variants.length;
      const order = group.variants.map((_, j) => group.variants[(i + j) % n] as Variant);
      for (const v of order) samples.get(v.key)?.push(await timed(v, rep));
    }
    log(`${group.name}: memory`);
    for (let i = 0; i < MEM_REPS; i += 1, rep += 1) {
      for (const v of group.variants) {
        const sample = await memory(v, rep, timeBin);
        if (sample.kb !== null) mem.get(v.key)?.push(sample.kb);
        if (sample.heapKb !== null) heap.get(v.key)?.push(sample.heapKb);
      }
    }
    const result = (key: string): VariantResult => {
      const v = group.variants.find((x) => x.key === key);
      if (!v) throw new Error(`${group.name}: no variant ${key}`);
      const ms = samples.get(key) ?? [];
      const kb = mem.get(key) ?? [];
      const heapKb = heap.get(key) ?? [];
      return {
        key,
        label: v.label,
        does: v.does,
        samplesMs: ms.map((x) => Math.round(x * 100) / 100),
        medianMs: Math.round(median(ms) * 100) / 100,
        memoryKb: kb.length > 0 ? Math.round(median(kb)) : null,
        heapKb: heapKb.length > 0 ? Math.round(median(heapKb)) : null,
      };
    };
    const rows = group.rows.map((row): RowResult => {
      const slipway = result(row.slipway);
      const peer = result(row.peer);
      return {
        id: row.id,
        title: row.title,
        slipway,
        peer,
        ratio: Math.round((peer.medianMs / slipway.medianMs) * 100) / 100,
      };
    });
    log(`${group.name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return rows;
  } finally {
    log(`${group.name}: cleanup`);
    await group.teardown().catch((err: unknown) => log(`${group.name}: cleanup failed: ${String(err)}`));
  }
}

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const fmtKb = (kb: number | null) =>
  kb === null ? 'n/a' : kb >= 10240 ? `${(kb / 1024).toFixed(0)} MiB` : `${kb} KiB`;

function table(rows: readonly RowResult[]): string {
  const header = [
    '#',
    'scenario',
    'slipway',
    'ms',
    'peer',
    'ms',
    'peer/slipway',
    'slipway dRSS',
    'slipway dHeap',
    'peer RSS',
  ];
  const body = rows.map((r) => [
    r.id,
    r.title,
    r.slipway.label,
    fmtMs(r.slipway.medianMs),
    r.peer.label,
    fmtMs(r.peer.medianMs),
    `${r.ratio.toFixed(1)}x`,
    fmtKb(r.slipway.memoryKb),
    fmtKb(r.slipway.heapKb),
    fmtKb(r.peer.memoryKb),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((line) => (line[i] ?? '').length)));
  const numeric = new Set([3, 5, 6, 7, 8, 9]);
  const fmt = (line: string[]) =>
    line
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

async function nodeStartupMs(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const start = performance.now();
    await plainRunner.run(process.execPath, ['-e', '0']);
    samples.push(performance.now() - start);
  }
  return Math.round(median(samples) * 10) / 10;
}

async function main(): Promise<void> {
  const started = performance.now();
  const rssAtStartKb = Math.round(process.memoryUsage.rss() / 1024);
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  await preflight();
  const timeBin = await findGnuTime();
  const versions = {
    node: process.version,
    docker: (await plainRunner.run('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim(),
    git: (await plainRunner.run('git', ['--version'])).stdout.trim(),
  };
  log(
    `run ${config.runId}: ${REPS} timed + ${MEM_REPS} memory repetitions per variant, ${os.cpus().length} CPUs`,
  );
  const groups = [retagGroup(config), stageGroup(config), buildGroup(config)];
  const rows: RowResult[] = [];
  for (const group of groups) rows.push(...(await runGroup(group, timeBin)));
  const notes = groups.flatMap((g) => g.notes);
  const loadAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const caveats = [
    'Slipway runs in-process (library calls, no Node start-up, HTTP connections kept alive across repetitions); a `slipway` CLI invocation adds a Node start-up (nodeStartupMs) plus module loading. The peer pays a process start-up per command, as a script driving the docker/git CLIs does.',
    'Both sides talk to the same dockerd and registry; work done inside dockerd and the registry (layer extraction, cache lookups, blob checks) is in the wall-clock times but in neither memory column.',
    'slipway dRSS / dHeap: peak RSS and peak V8 heap-in-use above their values just before the call (sampled every 1 ms after a forced GC), median of the memory repetitions. 0 KiB RSS means the call fit in memory the process had already committed. Child processes Slipway spawns (git, in 2c) are not included.',
    `The memory columns are not like for like: the peer column is the whole peak RSS of each CLI process it starts (a Go docker CLI or git, including its runtime), while Slipway's is the marginal growth of a Node process that is already running; that process held ${Math.round(rssAtStartKb / 1024)} MiB RSS before the first scenario (Node + tsx + Slipway's modules), which a one-shot \`slipway\` CLI run would pay once.`,
    timeBin
      ? 'peer RSS: sum of the peak RSS of every peer child process (GNU time -f %M) in one repetition, median of the memory repetitions; the docker CLI is a thin client, so this is not dockerd memory.'
      : 'peer RSS: omitted, /usr/bin/time (GNU time) is not available on this machine.',
    `Load average (1/5/15 min) at start ${loadAtStart.join(' / ')}, at end ${loadAtEnd.join(' / ')} on ${os.cpus().length} CPUs: other work on the machine (test suites, the shared dockerd and registry) lands in single repetitions; the medians absorb some of it, the per-repetition samples are in bench/results.json.`,
    'Timed repetitions interleave the variants (order rotated each repetition); memory repetitions are separate and untimed, so the /usr/bin/time wrapper never inflates a peer time.',
  ];
  const summary = {
    runId: config.runId,
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadAtEnd,
    },
    versions,
    repetitions: { timed: REPS, memory: MEM_REPS, warmup: 1 },
    nodeStartupMs: await nodeStartupMs(),
    processRssAtStartKb: rssAtStartKb,
    processMaxRssKb: process.resourceUsage().maxRSS,
    totalSeconds: Math.round((performance.now() - started) / 100) / 10,
    scenarios: rows.map((r) => ({
      id: r.id,
      title: r.title,
      slipwayMedianMs: r.slipway.medianMs,
      peerMedianMs: r.peer.medianMs,
      ratio: r.ratio,
      slipwayPeakRssDeltaKb: r.slipway.memoryKb,
      slipwayPeakHeapDeltaKb: r.slipway.heapKb,
      peerChildMaxRssSumKb: r.peer.memoryKb,
      slipway: { label: r.slipway.label, does: r.slipway.does, samplesMs: r.slipway.samplesMs },
      peer: { label: r.peer.label, does: r.peer.does, samplesMs: r.peer.samplesMs },
    })),
    notes,
    caveats,
  };

  const described = new Map<string, string>();
  for (const r of rows) {
    described.set(`slipway  ${r.slipway.label}`, r.slipway.does);
    described.set(`peer     ${r.peer.label}`, r.peer.does);
  }
  const out: string[] = [
    '',
    `Slipway vs peer (docker/git CLIs), median of ${REPS} runs, ratio = peer / slipway (>1: Slipway faster)`,
    '',
    table(rows),
    '',
    'What each side does:',
    ...[...described].map(([who, does]) => `  ${who}: ${does}`),
    '',
    'Notes:',
    ...notes.map((n) => `  ${n}`),
    '',
    'Caveats:',
    ...caveats.map((c) => `  - ${c}`),
    `  - node start-up (node -e 0) on this machine: ${summary.nodeStartupMs} ms`,
    '',
    'JSON summary (also in bench/results.json):',
    JSON.stringify(summary, null, 2),
  ];
  console.log(out.join('\n'));
  await writeFile(path.join(here, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
  log(`done in ${summary.totalSeconds} s`);
}

try {
  await main();
} catch (err) {
  console.error(`bench: failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
