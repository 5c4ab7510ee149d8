// `npm run bench`: Slipway side by side with the tools users would pick instead, in one run.
//
// Slipway runs as users run it: the built CLI (`node bin/slipway.js …`, dist/ built first by
// `npm run build`), or, for context packing, which has no command of its own, a probe script on
// the built library (bench/probes/). Every variant is child processes, so both sides pay their
// process start-up and are measured alike.
//
// For every group: untimed setup (generate or reuse the workload, push an image, warm a cache),
// one untimed warm-up of every variant, then BENCH_REPS (default 5) timed repetitions with the
// variants interleaved and their order rotated each repetition. Each repetition also records the
// peak RSS of the child process tree (/proc polled every 50 ms, and GNU time's maxRSS).
// Reported per row: medians, spread, ratio = peer / Slipway (> 1: Slipway faster), peak RSS.
// Written: bench/results.json, bench/RESULTS.md, and README's Performance block.
//
// Needs the local services (`npm run services up`); installs its peer tools (skopeo, GNU time)
// with apt-get when run as root (bench/deps.sh). Creates only `slipway-bench…` registry
// repositories, images and temp dirs, and removes them at the end.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { findGnuTime, type Group, measuringRunner, plainRunner, type Variant } from './harness.js';
import { buildReport, type Summary } from './report.js';
import { buildGroup } from './scenarios/build.js';
import type { BenchConfig } from './scenarios/config.js';
import { contextGroup } from './scenarios/context.js';
import { crossRegistryGroup } from './scenarios/cross-registry.js';
import { freshRunnerGroup } from './scenarios/fresh-runner.js';
import { releaseGroup } from './scenarios/release.js';
import { retagGroup } from './scenarios/retag.js';
import { stageGroup } from './scenarios/stage.js';
import { median, type RowResult, ratio, type SideResult, spread } from './stats.js';
import { Trash } from './trash.js';
import { workloadsRoot } from './workloads.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const REPS = positiveInt(process.env.BENCH_REPS, 5);
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function preflight(config: BenchConfig): Promise<void> {
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

interface Measured {
  readonly ms: number;
  readonly kb: number;
}

/** One repetition of `variant`: wall time of `run` (before/after untimed) and the peak RSS of its children. */
async function once(variant: Variant, rep: number, timeBin: string | null): Promise<Measured> {
  await variant.before?.(rep);
  const runner = await measuringRunner(timeBin);
  try {
    const start = performance.now();
    await variant.run(rep, runner);
    const ms = performance.now() - start;
    await variant.after?.(rep);
    return { ms, kb: runner.peakKb() };
  } finally {
    await runner.dispose();
  }
}

function side(variant: Variant, samples: readonly Measured[]): SideResult {
  const ms = samples.map((s) => s.ms);
  const kb = samples.map((s) => s.kb).filter((k) => k > 0);
  return {
    label: variant.label,
    does: variant.does,
    samplesMs: ms.map((x) => Math.round(x * 10) / 10),
    medianMs: Math.round(median(ms) * 10) / 10,
    spread: spread(ms),
    peakRssKb: kb.length > 0 ? Math.round(median(kb)) : null,
  };
}

async function runGroup(group: Group, timeBin: string | null): Promise<RowResult[]> {
  const unavailable = await group.unavailable?.();
  if (unavailable) {
    log(`${group.name}: not available in this build (${unavailable})`);
    return group.rows.map((r) => ({
      id: r.id,
      group: group.name,
      title: r.title,
      status: 'not-available',
      reason: unavailable,
    }));
  }
  const started = performance.now();
  try {
    log(`${group.name}: setup`);
    await group.setup();
    const samples = new Map<string, Measured[]>(group.variants.map((v) => [v.key, []]));
    let rep = 0;
    log(`${group.name}: warm-up`);
    for (const v of group.variants) await once(v, rep, timeBin);
    rep += 1;
    const reps = Math.min(REPS * (group.repsFactor ?? 1), group.maxReps ?? Number.POSITIVE_INFINITY);
    for (let i = 0; i < reps; i += 1, rep += 1) {
      log(`${group.name}: repetition ${i + 1}/${reps}`);
      const n = group.variants.length;
      const order = group.variants.map((_, j) => group.variants[(i + j) % n] as Variant);
      for (const v of order) samples.get(v.key)?.push(await once(v, rep, timeBin));
    }
    const result = (key: string): SideResult => {
      const v = group.variants.find((x) => x.key === key);
      if (!v) throw new Error(`${group.name}: no variant ${key}`);
      return side(v, samples.get(key) ?? []);
    };
    const rows = group.rows.map((row): RowResult => {
      const slipwaySide = result(row.slipway);
      const peer = result(row.peer);
      return {
        id: row.id,
        group: group.name,
        title: row.title,
        status: 'ok',
        slipway: slipwaySide,
        peer,
        ratio: ratio(peer.medianMs, slipwaySide.medianMs),
      };
    });
    log(`${group.name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return rows;
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ');
    log(`${group.name}: failed: ${reason}`);
    return group.rows.map((r) => ({ id: r.id, group: group.name, title: r.title, status: 'failed', reason }));
  } finally {
    log(`${group.name}: cleanup`);
    await group.teardown().catch((err: unknown) => log(`${group.name}: cleanup failed: ${String(err)}`));
  }
}

async function version(cmd: string, args: string[]): Promise<string> {
  const r = await plainRunner.run(cmd, args, { allowFail: true }).catch(() => null);
  return r && r.code === 0 ? ((r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '') : 'not installed';
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The bench measures a release, not a CI policy; CI=true would refuse local path sources.
  delete env.CI;
  const config: BenchConfig = {
    repo,
    runId: randomBytes(3).toString('hex'),
    registryAddr: process.env.SLIPWAY_REGISTRY_ADDR ?? '127.0.0.1:5000',
    rootImage: process.env.SLIPWAY_ROOT_IMAGE ?? 'slipway.local/root:busybox',
    sha: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim(),
    workloads: workloadsRoot(process.env),
    gitExecPath: execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(),
    env,
    trash: new Trash(),
  };
  await preflight(config);
  log('building dist (npm run build)');
  await plainRunner.run('npm', ['run', '--silent', 'build'], { cwd: repo });
  const timeBin = await findGnuTime();
  log(`run ${config.runId}: ${REPS} timed repetitions per variant, ${os.cpus().length} CPUs`);
  // The issue's 20 templates of about 500 files, served over file:// and over http.
  const TWENTY_TEMPLATES = {
    id: 'tpl20',
    templates: 20,
    filesPerTemplate: 500,
    minBytes: 200,
    maxBytes: 6000,
    content: 'text',
    history: 3,
  } as const;
  const groups: Group[] = [
    stageGroup(config, {
      id: 'stage-file',
      idPrefix: '1',
      transport: 'file',
      rows: 'full',
      set: TWENTY_TEMPLATES,
    }),
    stageGroup(config, {
      id: 'stage-http',
      idPrefix: '2',
      transport: 'http',
      rows: 'full',
      set: TWENTY_TEMPLATES,
    }),
    contextGroup(config),
    buildGroup(config),
    retagGroup(config, 50),
    retagGroup(config, 500),
    crossRegistryGroup(config, 50),
    crossRegistryGroup(config, 500, 3),
    releaseGroup(config),
    stageGroup(config, {
      id: 'mem-100m',
      idPrefix: '9a',
      transport: 'file',
      rows: 'cold',
      maxReps: 2,
      set: {
        id: 'big100m',
        templates: 4,
        filesPerTemplate: 25,
        minBytes: 500_000,
        maxBytes: 1_500_000,
        content: 'binary',
        history: 0,
      },
    }),
    stageGroup(config, {
      id: 'mem-1g',
      idPrefix: '9b',
      transport: 'file',
      rows: 'cold',
      maxReps: 2,
      set: {
        id: 'big1g',
        templates: 4,
        filesPerTemplate: 64,
        minBytes: 2_000_000,
        maxBytes: 6_000_000,
        content: 'binary',
        history: 0,
      },
    }),
    freshRunnerGroup(config),
  ].filter((g) => ONLY.length === 0 || ONLY.some((o) => g.name.startsWith(o)));
  const rows: RowResult[] = [];
  try {
    for (const group of groups) rows.push(...(await runGroup(group, timeBin)));
  } finally {
    log('removing what the variants left behind');
    await config.trash.empty();
  }
  const summary: Summary = {
    runId: config.runId,
    date: new Date().toISOString(),
    command: `BENCH_REPS=${REPS} npm run bench${ONLY.length > 0 ? ` (BENCH_ONLY=${ONLY.join(',')})` : ''}`,
    slipwayAs:
      'the built CLI, `node bin/slipway.js` (the esbuild bundle in dist/cli-bundle; context packing: bench/probes/context.mjs on dist/)',
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    },
    versions: {
      node: process.version,
      slipway: await version(process.execPath, [path.join(repo, 'bin', 'slipway.js'), '--version']),
      docker: await version('docker', ['version', '--format', '{{.Server.Version}}']),
      git: await version('git', ['--version']),
      skopeo: await version('skopeo', ['--version']),
      tar: await version('tar', ['--version']),
    },
    repetitions: { timed: REPS, warmup: 1 },
    memoryMethod: timeBin
      ? 'peak RSS of the child process tree: /proc polled every 50 ms (sum over the tree) and GNU time maxRSS (largest process), the larger of the two; median over repetitions'
      : 'peak RSS of the child process tree: /proc polled every 50 ms; GNU time is not installed',
    totalSeconds: Math.round((performance.now() - started) / 100) / 10,
    rows,
    notes: groups.flatMap((g) => g.notes),
  };
  const report = buildReport(summary);
  await writeFile(
    path.join(here, 'results.json'),
    `${JSON.stringify({ ...summary, targets: report.targets }, null, 2)}\n`,
  );
  await writeFile(path.join(here, 'RESULTS.md'), report.markdown);
  const readmeFile = path.join(repo, 'README.md');
  await writeFile(readmeFile, report.readme(await readFile(readmeFile, 'utf8')));
  console.log(report.markdown);
  log(
    `done in ${summary.totalSeconds} s; wrote bench/results.json, bench/RESULTS.md, README.md (Performance)`,
  );
}

try {
  await main();
} catch (err) {
  console.error(`bench: failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
