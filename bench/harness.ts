// The bench harness: child processes (optionally under GNU time for their peak RSS), in-process
// RSS sampling, medians, and the shapes a scenario group is written in.
import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A program and its arguments. */
export interface Command {
  readonly cmd: string;
  readonly args: readonly string[];
}

export interface ExecOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolve with the exit code instead of rejecting on a non-zero exit. */
  readonly allowFail?: boolean;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** How the peer's commands are run: plainly (timed reps) or under GNU time (memory reps). */
export interface Runner {
  run(cmd: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** `left | right`, both children started at once, like a shell pipeline. */
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
  const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join('\n');
  return new Error(`\`${describe(c)}\` exited with ${code}:\n${tail}`);
}

function exitOf(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Runs commands directly: what the timed repetitions use. */
export const plainRunner: Runner = {
  async run(cmd, args, options = {}) {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
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
    const b = spawn(right.cmd, right.args, { ...spawnOpts, stdio: ['pipe', 'pipe', 'pipe'] });
    if (!a.stdout || !b.stdin) throw new Error('pipe: missing stdio');
    a.stdout.pipe(b.stdin);
    const aErr = collect(a.stderr);
    const bOut = collect(b.stdout);
    const bErr = collect(b.stderr);
    const [ca, cb] = await Promise.all([exitOf(a), exitOf(b)]);
    if (!options.allowFail) {
      if (ca !== 0) throw failure(left, ca, aErr(), '');
      if (cb !== 0) throw failure(right, cb, bErr(), bOut());
    }
    return { code: ca !== 0 ? ca : cb, stdout: bOut(), stderr: aErr() + bErr() };
  },
};

/** A runner that wraps every child in `time -f %M` and keeps each child's peak RSS (KiB). */
export interface MeasuringRunner extends Runner {
  /** Peak RSS of every child run so far, KiB. */
  readonly maxRssKb: number[];
  dispose(): Promise<void>;
}

/** The GNU time binary when it exists and answers `-f %M`, else null. */
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

export async function measuringRunner(timeBin: string): Promise<MeasuringRunner> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-time-'));
  const maxRssKb: number[] = [];
  let n = 0;
  const wrap = (c: Command): { command: Command; file: string } => {
    n += 1;
    const file = path.join(dir, `${n}.txt`);
    return { command: { cmd: timeBin, args: ['-f', '%M', '-o', file, c.cmd, ...c.args] }, file };
  };
  const read = async (file: string): Promise<void> => {
    // On a non-zero exit GNU time writes "Command exited with non-zero status N" first.
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const kb = Number(lines[lines.length - 1]);
    if (Number.isFinite(kb)) maxRssKb.push(kb);
  };
  return {
    maxRssKb,
    async run(cmd, args, options) {
      const { command, file } = wrap({ cmd, args });
      const result = await plainRunner.run(command.cmd, command.args, options);
      await read(file);
      return result;
    },
    async pipe(left, right, options) {
      const l = wrap(left);
      const r = wrap(right);
      const result = await plainRunner.pipe(l.command, r.command, options);
      await read(l.file);
      await read(r.file);
      return result;
    },
    async dispose() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A collectable heap before memory samples, so the RSS baseline is not someone else's garbage. */
let gcFn: (() => void) | undefined;
export function collectGarbage(): void {
  if (!gcFn) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = () => {};
    }
  }
  gcFn();
}

/** Peak growth of this process's memory while a function ran, KiB (0 when it never grew). */
export interface MemoryDelta {
  /** Resident set size above the RSS just before the call. */
  readonly rssKb: number;
  /** V8 heap in use above the heap in use just before the call (what the call allocated, live or not yet collected). */
  readonly heapKb: number;
}

/**
 * Runs `fn` after a forced GC while sampling this process's RSS and V8 heap every millisecond
 * (and once at the end); returns the peaks above the values just before `fn` started.
 */
export async function peakMemoryDelta(fn: () => Promise<void>): Promise<MemoryDelta> {
  collectGarbage();
  const base = process.memoryUsage();
  let rss = base.rss;
  let heap = base.heapUsed;
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > rss) rss = now.rss;
    if (now.heapUsed > heap) heap = now.heapUsed;
  };
  const timer = setInterval(sample, 1);
  try {
    await fn();
  } finally {
    clearInterval(timer);
    sample();
  }
  return { rssKb: Math.round((rss - base.rss) / 1024), heapKb: Math.round((heap - base.heapUsed) / 1024) };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** One way of doing a scenario's job, by Slipway (in-process) or by the peer (child processes). */
export interface Variant {
  readonly key: string;
  readonly side: 'slipway' | 'peer';
  /** Short name for the table. */
  readonly label: string;
  /** What it actually does, honestly, for the report. */
  readonly does: string;
  /** Untimed preparation before every repetition. */
  before?(rep: number): Promise<void>;
  /** The timed work. Peer variants run their commands through `runner`; Slipway ignores it. */
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

/** Scenarios sharing a setup (an image pushed once, a warm cache, a built plan). */
export interface Group {
  readonly name: string;
  /** Untimed: create what the variants need, and warm whatever "warm" means for this group. */
  setup(): Promise<void>;
  readonly variants: readonly Variant[];
  readonly rows: readonly Row[];
  /** Remove what setup and the repetitions created; runs even when a repetition failed. */
  teardown(): Promise<void>;
  /** Facts learned during the run (digests, checks) for the report. */
  readonly notes: string[];
}
