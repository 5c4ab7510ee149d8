import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { formatDuration } from '../core/timeouts.js';

/**
 * One shell runs the archive's producer (`git archive`) into the system's tar (GNU tar or bsdtar),
 * and `tee` hands the same bytes to Slipway's own checks (extract.ts with `checkOnly`) on
 * `stdout`. The files are created by tar, beside the Node thread (on another core), instead of
 * one by one on it: file creation is most of what staging costs. One process is started from
 * Node, not two (a fork of a large Node process costs milliseconds on its thread), and no byte
 * of the archive is written by Node. Owners, permissions and times from the archive are not
 * applied (the files are the caller's, modes follow the umask); an existing file is never
 * replaced. Anything tar refuses or fails at makes its exit code non-zero.
 *
 * The pipeline is `producer | tee | tar`: tee's own stdout is moved to Node's `stdout` (kept on
 * fd 5 meanwhile), and tee writes tar's copy to `/dev/fd/6`, the pipe to tar, which Linux opens
 * again by that name. No FIFO and no process beyond the four (no mkfifo, no rm); Node's stdio
 * is a socket, which `/dev/fd` cannot open, hence this direction. `tee -p` keeps feeding the
 * checks when tar stops early, so an archive's refusal is still reported as Slipway's. The
 * producer's and tar's exit codes come back on fd 4, their messages on fds 2 and 3. With a
 * `copy` path, a written tree is then hard-linked there by GNU `cp -al` (the cache's copy;
 * removed when cp fails), again without a process start from Node. The pipeline runs in the
 * background so that the shell can close its own copy of `stdout` first: only tee holds it, so
 * it ends when the archive does, not when tar and cp are done.
 */
const SCRIPT = `
dest=$1 strip=$2 copy=$3
shift 3
exec 5>&1 >/dev/null
{ exec 5>&-; "$@" 3>&- 4>&-; echo "producer $?" >&4; } |
  tee -p /dev/fd/6 6>&1 >&5 3>&- 4>&- 5>&- |
  { unset TAR_OPTIONS; LC_ALL=C; export LC_ALL; exec tar -x -f - -C "$dest" -m -k --no-same-owner --no-same-permissions --strip-components="$strip" 2>&3 3>&- 4>&- 5>&-; } &
exec 5>&-
wait $!
status=$?
echo "tar $status" >&4
if [ -n "$copy" ] && [ "$status" = 0 ]; then cp -al -- "$dest" "$copy" 2>/dev/null || rm -rf -- "$copy"; fi
`;

/** Options for {@link TeedArchive.open}. */
export interface TeedOptions {
  /** Stops everything: the run was interrupted, or the archive refused. */
  readonly signal: AbortSignal;
  /** Where a hard-linked copy of the written tree goes (see FetchOptions.linkCopyTo). */
  readonly copy?: string | undefined;
  /**
   * Stops everything when no byte of the archive arrived for this long, or tar and cp had not
   * finished this long after the last one: a stalled process fails the fetch, never hangs it.
   */
  readonly quietMs: number;
}

/** How the producer and tar ended. */
export interface TeedResult {
  /** The producer's exit code (1 when it could not run or was killed). */
  readonly producer: number;
  readonly producerStderr: string;
  /** tar's exit code. */
  readonly tar: number;
  readonly tarStderr: string;
}

/** The producer's archive being written by the system's tar, with its bytes on {@link stdout}. */
export class TeedArchive {
  /** The archive's bytes, as tar reads them. */
  readonly stdout: Readable;
  private readonly child: ChildProcess;
  private readonly exited: Promise<TeedResult>;

  private stalled = false;

  private constructor(
    dest: string,
    strip: number,
    producer: readonly string[],
    env: NodeJS.ProcessEnv,
    options: TeedOptions,
  ) {
    const { signal, quietMs } = options;
    const args = [dest, String(strip), options.copy ?? '', ...producer];
    this.child = spawn('/bin/sh', ['-c', SCRIPT, 'sh', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group: stopping it stops the producer, tee and tar with it.
      detached: true,
    });
    this.stdout = this.child.stdout as Readable;
    const collect = (stream: Readable | null | undefined, limit: number) => {
      let text = '';
      stream?.setEncoding('utf8').on('data', (d: string) => {
        if (text.length < limit) text += d;
      });
      return () => text;
    };
    const producerStderr = collect(this.child.stderr, 64 * 1024);
    const tarStderr = collect(this.child.stdio[3] as Readable, 16 * 1024);
    const codes = collect(this.child.stdio[4] as Readable, 1024);
    const onAbort = () => this.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) this.stop();
    let quiet: NodeJS.Timeout | undefined;
    const watch = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => {
        this.stalled = true;
        this.stop();
      }, quietMs);
    };
    watch();
    this.stdout.on('data', watch).once('end', watch);
    this.exited = new Promise((resolve) => {
      const done = (failure?: string) => {
        clearTimeout(quiet);
        signal.removeEventListener('abort', onAbort);
        const code = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(codes())?.[1] ?? 1);
        const stall = this.stalled
          ? `stopped: the archive made no progress for ${formatDuration(quietMs)}\n`
          : '';
        resolve({
          producer: failure ? 1 : code('producer'),
          producerStderr: failure ?? `${producerStderr()}${stall}`,
          tar: failure ? 1 : code('tar'),
          tarStderr: tarStderr(),
        });
      };
      this.child.once('error', (err) => done(`could not run /bin/sh: ${err.message}`));
      this.child.once('close', () => done());
    });
  }

  /**
   * Whether `env`'s PATH has what {@link open} runs: /bin/sh, GNU tee (for `-p`), a GNU tar or
   * bsdtar, and a `/dev/fd` through which tee opens a pipe again. Asked once per PATH, without
   * blocking the thread; every caller meanwhile shares the one answer.
   */
  static usable(env: NodeJS.ProcessEnv): Promise<boolean> {
    const key = env.PATH ?? '';
    let answer = usable.get(key);
    if (answer === undefined) {
      answer = systemToolsUsable(env);
      usable.set(key, answer);
    }
    return answer;
  }

  /**
   * The producer (`producer[0]` with its arguments) piped into tar writing into the existing empty
   * directory `dest`, `strip` leading path segments stripped; only where {@link usable} said yes.
   * `env` is the producer's; tar runs without TAR_OPTIONS, in the C locale. Read {@link stdout}
   * before any I/O can run, or Node discards what an exited child wrote and nobody read.
   */
  static open(
    dest: string,
    strip: number,
    producer: readonly string[],
    env: NodeJS.ProcessEnv,
    options: TeedOptions,
  ): TeedArchive {
    return new TeedArchive(dest, strip, producer, env, options);
  }

  /** Stops the producer, tee and tar (after a refusal: what tar wrote is removed by the caller). */
  stop(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /** Exit codes and messages, once every process has exited. */
  result(): Promise<TeedResult> {
    return this.exited;
  }
}

/** The answer of {@link TeedArchive.usable} for each PATH asked about. */
const usable = new Map<string, Promise<boolean>>();

/**
 * The tools' versions, then a line through `tee -p /dev/fd/6` into a pipe: the very open the
 * archive's shell depends on (no `/dev/fd`, or one that cannot open a pipe, and it fails).
 */
const CHECK =
  'tar --version && tee --version && echo devfd-ok | tee -p /dev/fd/6 6>&1 >/dev/null | { read -r line && echo "$line"; }';

/** Runs {@link CHECK} with `env`'s PATH; false when anything in it fails or it takes 10 s. */
function systemToolsUsable(env: NodeJS.ProcessEnv): Promise<boolean> {
  const { TAR_OPTIONS: _ignored, ...rest } = env;
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', CHECK],
      { env: { ...rest, LC_ALL: 'C' }, encoding: 'utf8', timeout: 10_000 },
      (err, stdout) =>
        resolve(
          !err && /GNU tar|bsdtar/.test(stdout) && /GNU coreutils/.test(stdout) && /^devfd-ok$/m.test(stdout),
        ),
    );
  });
}
