// The bench harness: every variant, Slipway's and the peer's, is child processes; the runner times
// nothing itself but records each child tree's peak RSS (polling /proc for the sum over the tree,
// GNU time for the largest single process), and the groups' shapes.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** A program and its arguments. */
export interface Command {
  readonly cmd: string;
  readonly args: readonly string[];
}

/** How a child is run. */
export interface ExecOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolve with the exit code instead of rejecting on a non-zero exit. */
  readonly allowFail?: boolean;
  /** Send stdout to /dev/null instead of collecting it. */
  readonly discardStdout?: boolean;
}

/** What a child printed and how it exited. */
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a variant's commands; `run` is sequential, `pipe` is `left | right`. */
export interface Runner {
  run(cmd: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** `left | right > /dev/null`, both children started at once, like a shell pipeline. */
  pipe(left: Command, right: Command, options?: ExecOptions): Promise<ExecResult>;
}

/** Keeps the tail of a child's output (docker build can be chatty) for error messages. */
const OUTPUT_CAP = 256 * 1024;

function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    text += chunk;
    if (text.length > OUTPUT_CAP) text = text.slice(-OUTPUT_CAP);
  });
  return () => text;
}

function describe(c: Command): string {
  return [c.cmd, ...c.args].join(' ');
}

function failure(c: Command, code: number, stderr: string, stdout: string): Error {
  const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-6).join('\n');
  return new Error(`\`${describe(c)}\` exited with ${code}:\n${tail}`);
}

function exitOf(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Runs commands directly, measuring nothing: setup, teardown and checks. */
export const plainRunner: Runner = {
  async run(cmd, args, options = {}) {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.discardStdout ? 'ignore' : 'pipe', 'pipe'],
    });
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    const code = await exitOf(child);
    if (code !== 0 && !options.allowFail) throw failure({ cmd, args }, code, err(), out());
    return { code, stdout: out(), stderr: err() };
  },

  async pipe(left, right, options = {}) {
    const spawnOpts = { cwd: options.cwd, env: options.env ?? process.env };
    const a = spawn(left.cmd, left.args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] });
    if (!a.stdout) throw new Error('pipe: missing stdio');
    // The right side reads the left's pipe itself, as in a shell: no bytes pass through this process.
    const b = spawn(right.cmd, right.args, { ...spawnOpts, stdio: [a.stdout, 'ignore', 'pipe'] });
    a.stdout.destroy();
    const aErr = collect(a.stderr);
    const bErr = collect(b.stderr);
    const [ca, cb] = await Promise.all([exitOf(a), exitOf(b)]);
    if (!options.allowFail) {
      if (ca !== 0) throw failure(left, ca, aErr(), '');
      if (cb !== 0) throw failure(right, cb, bErr(), '');
    }
    return { code: ca !== 0 ? ca : cb, stdout: '', stderr: aErr() + bErr() };
  },
};

const PAGE_KB = 4;

/** Sum of the RSS (KiB) of `root` and every descendant, read from /proc/<pid>/stat. */
export function treeRssKb(roots: ReadonlySet<number>): Map<number, number> {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return new Map();
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name, which may itself hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(name);
      parent.set(pid, Number(fields[1]));
      rss.set(pid, Number(fields[21]) * PAGE_KB);
    } catch {
      // The process exited between readdir and read.
    }
  }
  const totals = new Map<number, number>();
  for (const [pid, kb] of rss) {
    let p: number | undefined = pid;
    for (let depth = 0; p !== undefined && p > 1 && depth < 64; depth += 1) {
      if (roots.has(p)) {
        totals.set(p, (totals.get(p) ?? 0) + kb);
        break;
      }
      p = parent.get(p);
    }
  }
  return totals;
}

/** Polls the process trees of the children being measured, every `intervalMs`. */
class TreeSampler {
  private readonly peaks = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  track(pid: number): void {
    this.peaks.set(pid, 0);
    this.timer ??= setInterval(() => this.sample(), this.intervalMs);
    this.sample();
  }

  /** Stops tracking `pid`; its peak tree RSS seen, KiB. */
  untrack(pid: number): number {
    const peak = this.peaks.get(pid) ?? 0;
    this.peaks.delete(pid);
    if (this.peaks.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    return peak;
  }

  private sample(): void {
    const totals = treeRssKb(new Set(this.peaks.keys()));
    for (const [pid, kb] of totals) if (kb > (this.peaks.get(pid) ?? 0)) this.peaks.set(pid, kb);
  }
}

/** A runner that measures: the peak RSS of one repetition (max over sequential commands, sum over a pipe). */
export interface MeasuringRunner extends Runner {
  /** Peak RSS of the repetition so far, KiB. */
  peakKb(): number;
  dispose(): Promise<void>;
}

/** The GNU time binary when it answers `-f %M`, else null. */
export async function findGnuTime(): Promise<string | null> {
  const bin = '/usr/bin/time';
  try {
    await access(bin);
    const probe = await plainRunner.run(bin, ['-f', '%M', 'true'], { allowFail: true });
    return probe.code === 0 && /^\d+\s*$/m.test(probe.stderr.trim()) ? bin : null;
  } catch {
    return null;
  }
}

const sampler = new TreeSampler(50);

/**
 * A runner for one timed repetition: each child runs under GNU time (its largest process's
 * maxRSS) while /proc is polled for its whole tree; a command's peak is the larger of the two.
 */
export async function measuringRunner(timeBin: string | null): Promise<MeasuringRunner> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-time-'));
  let peak = 0;
  let n = 0;
  const wrap = (c: Command): { command: Command; file: string | null } => {
    if (!timeBin) return { command: c, file: null };
    n += 1;
    const file = path.join(dir, `${n}.txt`);
    return { command: { cmd: timeBin, args: ['-f', '%M', '-o', file, c.cmd, ...c.args] }, file };
  };
  const gnuKb = async (file: string | null): Promise<number> => {
    if (!file) return 0;
    // On a non-zero exit GNU time writes "Command exited with non-zero status N" first.
    const lines = (await readFile(file, 'utf8').catch(() => '')).trim().split('\n');
    const kb = Number(lines[lines.length - 1]);
    return Number.isFinite(kb) ? kb : 0;
  };
  const spawnMeasured = (
    c: Command,
    options: ExecOptions,
    stdin: 'ignore' | Readable,
    stdout: 'pipe' | 'ignore',
  ) => {
    const w = wrap(c);
    const child = spawn(w.command.cmd, w.command.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [stdin, stdout, 'pipe'],
    });
    if (child.pid) sampler.track(child.pid);
    const done = exitOf(child).finally(() => undefined);
    const measured = async (): Promise<number> => {
      await done.catch(() => 0);
      const polled = child.pid ? sampler.untrack(child.pid) : 0;
      return Math.max(polled, await gnuKb(w.file));
    };
    return { child, done, measured };
  };
  return {
    peakKb: () => peak,
    async run(cmd, args, options = {}) {
      const s = spawnMeasured({ cmd, args }, options, 'ignore', options.discardStdout ? 'ignore' : 'pipe');
      const out = collect(s.child.stdout);
      const err = collect(s.child.stderr);
      const code = await s.done;
      peak = Math.max(peak, await s.measured());
      if (code !== 0 && !options.allowFail) throw failure({ cmd, args }, code, err(), out());
      return { code, stdout: out(), stderr: err() };
    },
    async pipe(left, right, options = {}) {
      const a = spawnMeasured(left, options, 'ignore', 'pipe');
      if (!a.child.stdout) throw new Error('pipe: missing stdio');
      // The right side reads the left's pipe itself, as in a shell: no bytes pass through this process.
      const b = spawnMeasured(right, options, a.child.stdout, 'ignore');
      a.child.stdout.destroy();
      const aErr = collect(a.child.stderr);
      const bErr = collect(b.child.stderr);
      const [ca, cb] = await Promise.all([a.done, b.done]);
      peak = Math.max(peak, (await a.measured()) + (await b.measured()));
      if (!options.allowFail) {
        if (ca !== 0) throw failure(left, ca, aErr(), '');
        if (cb !== 0) throw failure(right, cb, bErr(), '');
      }
      return { code: ca !== 0 ? ca : cb, stdout: '', stderr: aErr() + bErr() };
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One way of doing a scenario's job, by Slipway (its CLI or a probe on its library) or by the peer. */
export interface Variant {
  readonly key: string;
  readonly side: 'slipway' | 'peer';
  /** Short name for the table. */
  readonly label: string;
  /** What it actually does, honestly, for the report. */
  readonly does: string;
  /** Untimed preparation before every repetition. */
  before?(rep: number): Promise<void>;
  /** The timed work: child processes started through `runner`. */
  run(rep: number, runner: Runner): Promise<void>;
  /** Untimed clean-up or checks after every repetition. */
  after?(rep: number): Promise<void>;
}

/** A table row: one Slipway variant against one peer variant (variants may appear in several rows). */
export interface Row {
  readonly id: string;
  readonly title: string;
  readonly slipway: string;
  readonly peer: string;
}

/** Scenarios sharing a setup (an image pushed once, a warm cache, a generated workload). */
export interface Group {
  readonly name: string;
  /** Why the group cannot run in this build (a feature not there yet), or null; checked before setup. */
  unavailable?(): Promise<string | null>;
  /** Untimed: create what the variants need, and warm whatever "warm" means for this group. */
  setup(): Promise<void>;
  readonly variants: readonly Variant[];
  readonly rows: readonly Row[];
  /** Timed repetitions for this group when fewer than BENCH_REPS (the heavy groups). */
  readonly maxReps?: number;
  /** BENCH_REPS times this for a cheap group whose rows compare medians of a few hundred ms. */
  readonly repsFactor?: number;
  /** Remove what setup and the repetitions created; runs even when a repetition failed. */
  teardown(): Promise<void>;
  /** Facts learned during the run (sizes, digests, checks) for the report. */
  readonly notes: string[];
}
