import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
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
 * `tee -p` keeps feeding the checks when tar stops early, so an archive's refusal is still
 * reported as Slipway's. The producer's and tar's exit codes come back on fd 4, their messages
 * on fds 2 and 3. With a `copy` path, a written tree is then hard-linked there by GNU `cp -al`
 * (the cache's copy; removed when cp fails), again without a process start from Node. Only tee
 * holds `stdout`, so it ends when the archive does.
 */
const SCRIPT = `
dest=$1 strip=$2 fifo=$3 copy=$4
shift 4
mkfifo "$fifo" || exit 97
(unset TAR_OPTIONS; LC_ALL=C; export LC_ALL
 exec tar -x -f - -C "$dest" -m -k --no-same-owner --no-same-permissions --strip-components="$strip" <"$fifo" >/dev/null 2>&3 4>&-) &
tar=$!
{ "$@" 3>&- 4>&-; echo "producer $?" >&4; } | tee -p "$fifo" 3>&- 4>&-
exec >/dev/null
wait "$tar"
status=$?
echo "tar $status" >&4
rm -f "$fifo"
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
  private readonly fifo: string;

  private stalled = false;

  private constructor(
    dest: string,
    strip: number,
    producer: readonly string[],
    env: NodeJS.ProcessEnv,
    options: TeedOptions,
  ) {
    const { signal, quietMs } = options;
    this.fifo = `${dest}.fifo`;
    const args = [dest, String(strip), this.fifo, options.copy ?? '', ...producer];
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
        // Left behind only when the shell was stopped before its own cleanup.
        rmSync(this.fifo, { force: true });
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
   * The producer (`producer[0]` with its arguments) piped into tar writing into the existing empty
   * directory `dest`, `strip` leading path segments stripped; null without a usable shell, tar and
   * GNU tee. `env` is the producer's; tar runs without TAR_OPTIONS, in the C locale.
   */
  static open(
    dest: string,
    strip: number,
    producer: readonly string[],
    env: NodeJS.ProcessEnv,
    options: TeedOptions,
  ): TeedArchive | null {
    return systemToolsUsable(env) ? new TeedArchive(dest, strip, producer, env, options) : null;
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

/** The answer of {@link systemToolsUsable} for each PATH asked about. */
const usable = new Map<string, boolean>();

/** Whether /bin/sh, mkfifo, GNU tee (for `-p`) and a GNU tar or bsdtar are on `env`'s PATH (asked once per PATH). */
function systemToolsUsable(env: NodeJS.ProcessEnv): boolean {
  const key = env.PATH ?? '';
  let answer = usable.get(key);
  if (answer === undefined) {
    const { TAR_OPTIONS: _ignored, ...rest } = env;
    const r = spawnSync('/bin/sh', ['-c', 'command -v mkfifo >/dev/null && tar --version && tee --version'], {
      env: { ...rest, LC_ALL: 'C' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    answer = r.status === 0 && /GNU tar|bsdtar/.test(r.stdout ?? '') && /GNU coreutils/.test(r.stdout ?? '');
    usable.set(key, answer);
  }
  return answer;
}
