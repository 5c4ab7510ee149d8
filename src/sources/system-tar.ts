import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The system's tar (GNU tar or bsdtar) writing an archive into a directory while the same bytes
 * pass on to Slipway's own checks (extract.ts with `checkOnly`). Files are created by tar
 * processes, which run beside the Node thread (on another core), instead of one by one on it:
 * file creation is most of what staging costs. Owners, permissions and times from the archive
 * are not applied (the files are the caller's, modes follow the umask); an existing file is never
 * replaced. Anything tar refuses or fails at makes its exit code non-zero.
 */
export class TarWriter extends Transform {
  private readonly child: ChildProcess;
  private readonly exited: Promise<{ code: number; stderr: string }>;
  private broken = false;

  private constructor(dest: string, strip: number, env: NodeJS.ProcessEnv, signal?: AbortSignal) {
    super();
    const args = ['-x', '-f', '-', '-C', dest, '-m', '-k', '--no-same-owner', '--no-same-permissions'];
    if (strip > 0) args.push(`--strip-components=${strip}`);
    this.child = spawn('tar', args, {
      env,
      stdio: ['pipe', 'ignore', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let stderr = '';
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 16 * 1024) stderr += d;
    });
    // A tar that stopped early closes its end: the rest of the archive still goes to the checks.
    this.child.stdin?.on('error', () => {
      this.broken = true;
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => resolve({ code: 1, stderr: `could not run tar: ${err.message}` }));
      this.child.once('close', (code) => resolve({ code: code ?? 1, stderr }));
    });
  }

  /** A writer into the existing empty directory `dest`, stripping `strip` leading path segments; null without a usable tar. */
  static open(dest: string, strip: number, env: NodeJS.ProcessEnv, signal?: AbortSignal): TarWriter | null {
    // GNU tar reads options from TAR_OPTIONS (--overwrite, --absolute-names...): not here.
    const { TAR_OPTIONS: _ignored, ...rest } = env;
    const clean = { ...rest, LC_ALL: 'C' };
    return systemTarUsable(clean) ? new TarWriter(dest, strip, clean, signal) : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const stdin = this.child.stdin;
    if (this.broken || !stdin || stdin.destroyed || stdin.write(chunk)) {
      done(null, chunk);
      return;
    }
    // tar is behind: hold the archive (and so git) until it has written what it was given.
    const go = () => {
      stdin.off('drain', go);
      stdin.off('close', go);
      done(null, chunk);
    };
    stdin.once('drain', go).once('close', go);
  }

  override _flush(done: TransformCallback): void {
    this.child.stdin?.end();
    done();
  }

  /** Stops tar (after a refusal: what it wrote is removed by the caller). */
  stop(): void {
    this.child.kill();
  }

  /** tar's exit code and messages, once it has exited. */
  result(): Promise<{ code: number; stderr: string }> {
    return this.exited;
  }
}

let usable: boolean | undefined;

/** Whether a GNU tar or bsdtar is on PATH (asked once per process). */
function systemTarUsable(env: NodeJS.ProcessEnv): boolean {
  if (usable === undefined) {
    const r = spawnSync('tar', ['--version'], { env, encoding: 'utf8', timeout: 10_000 });
    usable = r.status === 0 && /GNU tar|bsdtar/.test(r.stdout ?? '');
  }
  return usable;
}
