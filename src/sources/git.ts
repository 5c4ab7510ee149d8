import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isSlipwayError, SlipwayError } from '../core/errors.js';
import { DEFAULT_TIMEOUTS, formatDuration, type Timeouts } from '../core/timeouts.js';
import { type ExtractObserver, extractTar, normaliseSubdir } from './extract.js';
import { type FetchOptions, requirePinnedSha, type SourceContext, type TreeSource } from './source.js';
import { TeedArchive, type TeedResult } from './system-tar.js';

/** A git template source as written in the manifest. */
export interface GitSourceSpec {
  readonly git: string;
  readonly subdir?: string;
}

/** Where git fetches from, and how the source is named without credentials. */
export interface GitLocation {
  /** What git is given: a URL, or an absolute path for local repositories. */
  readonly url: string;
  /** Credential-free identity (cache key). */
  readonly identity: string;
  /** Credential-free display form. */
  readonly display: string;
  /** The http(s) origin, when the URL is http(s) (tokens are scoped to it). */
  readonly httpOrigin?: string;
  /** A password embedded in the URL (to redact). */
  readonly embeddedSecret?: string;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const SCP_RE = /^[^/\s]+@[^/\s:]+:/;

/** Resolves a manifest `git` value: URLs as they are (minus credentials in names), local paths against the manifest dir. */
export function resolveGitLocation(git: string, manifestDir: string): GitLocation {
  if (URL_RE.test(git)) {
    const u = new URL(git);
    const secret = u.password ? decodeURIComponent(u.password) : undefined;
    u.username = '';
    u.password = '';
    const clean = u.toString();
    const http = u.protocol === 'http:' || u.protocol === 'https:';
    return {
      url: git,
      identity: clean,
      display: clean,
      ...(http ? { httpOrigin: u.origin } : {}),
      ...(secret ? { embeddedSecret: secret } : {}),
    };
  }
  if (SCP_RE.test(git)) return { url: git, identity: `ssh://${git}`, display: git };
  const abs = path.resolve(manifestDir, git);
  return { url: abs, identity: `file://${abs}`, display: git };
}

/** Environment variables that would point git at the caller's repository instead of the scratch one. */
const GIT_LOCATING_ENV = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
];

/**
 * Builds the git process environment: no prompts, the token as an http header scoped to the
 * origin, and a transfer slower than 1 KiB/s for `timeouts.requestMs` aborted (a stalled host).
 */
export function gitEnv(
  base: NodeJS.ProcessEnv,
  origin: string | undefined,
  token: string | undefined,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (GIT_LOCATING_ENV.includes(k) || /^GIT_CONFIG_(KEY|VALUE)_\d+$/.test(k)) continue;
    env[k] = v;
  }
  env.GIT_TERMINAL_PROMPT = '0';
  const quietSeconds = Math.max(1, Math.ceil(timeouts.requestMs / 1000));
  env.GIT_SSH_COMMAND ??= `ssh -o BatchMode=yes -o ConnectTimeout=${quietSeconds} -o ServerAliveInterval=${quietSeconds} -o ServerAliveCountMax=1`;
  env.LC_ALL = 'C';
  const config: Array<[string, string]> = [
    ['http.lowSpeedLimit', '1000'],
    ['http.lowSpeedTime', String(quietSeconds)],
  ];
  if (token && origin) {
    // In a header via the environment: never in the URL, argv, a file, or git's own messages.
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    config.push([`http.${origin}/.extraHeader`, `Authorization: Basic ${basic}`]);
  }
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

interface GitResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The git source: fetches exactly the pinned commit with the real git binary. */
export class GitTemplateSource implements TreeSource {
  readonly kind = 'git' as const;
  readonly identity: string;
  readonly description: string;
  readonly subdir: string;
  readonly cacheable = true;
  private readonly location: GitLocation;
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeouts: Timeouts;

  constructor(
    spec: GitSourceSpec,
    private readonly ctx: SourceContext,
    token?: string,
  ) {
    this.location = resolveGitLocation(spec.git, ctx.manifestDir);
    this.subdir = normaliseSubdir(spec.subdir);
    this.identity = this.location.identity;
    this.description = `git ${this.location.display}${this.subdir ? `#${this.subdir}` : ''}`;
    const useToken = this.location.httpOrigin ? token : undefined;
    ctx.redactor.add(useToken, this.location.embeddedSecret);
    this.timeouts = ctx.timeouts ?? DEFAULT_TIMEOUTS;
    this.env = gitEnv(ctx.env, this.location.httpOrigin, useToken, this.timeouts);
  }

  async fetchTree(
    ref: string | null,
    dest: string,
    observer?: ExtractObserver,
    options: FetchOptions = {},
  ): Promise<void> {
    const sha = requirePinnedSha(ref, this.ctx.subject);
    const local = await this.localGitDir();
    const copy = options.linkCopyTo;
    if (local !== undefined) {
      // The repository is on this machine: read the commit where it lies, no clone or fetch.
      const direct = await this.archive(
        ['--git-dir', local, '--no-replace-objects'],
        sha,
        dest,
        observer,
        copy,
      );
      if (direct.ok) return;
      observer?.restart();
      // Whatever went wrong (no such commit, not a commit, no such subdir, a repository git will
      // not read here), the fetch below reports it as it always has.
      await rm(dest, { recursive: true, force: true });
    }
    await this.withScratch(async (repo) => {
      await this.fetchCommit(repo, sha);
      const fetched = await this.archive(['-C', repo], sha, dest, observer, copy);
      if (fetched.ok) return;
      observer?.restart();
      await rm(dest, { recursive: true, force: true });
      // Name what is wrong: the commit, then the subdirectory; otherwise git's own message.
      await this.verifyCommit(repo, sha);
      if (this.subdir) await this.verifySubdir(repo, sha);
      throw this.failure(`git archive failed for ${sha} of`, fetched.stderr);
    });
  }

  async commitExists(ref: string): Promise<boolean> {
    const sha = requirePinnedSha(ref, this.ctx.subject);
    const local = await this.localGitDir();
    if (local !== undefined) {
      const t = await this.git(
        ['--git-dir', local, '--no-replace-objects', 'cat-file', '-t', sha],
        undefined,
      );
      if (t.code === 0 && t.stdout.trim() === 'commit') return true;
    }
    return this.withScratch(async (repo) => {
      try {
        await this.fetchCommit(repo, sha);
        await this.verifyCommit(repo, sha);
        return true;
      } catch (err) {
        if (err instanceof SlipwayError && err.code === 'COMMIT_NOT_FOUND') return false;
        throw err;
      }
    });
  }

  /**
   * The git directory of a repository on this machine (a path or file:// URL) that can be read
   * in place, or undefined. Only when the repository's own configuration cannot change what
   * `git archive` writes (line endings, attributes, archive filters, includes): otherwise it is
   * fetched into a scratch repository like a remote one, so both give the same tree.
   */
  private async localGitDir(): Promise<string | undefined> {
    const { identity, url } = this.location;
    if (!identity.startsWith('file://')) return undefined;
    let dir: string;
    try {
      dir = path.isAbsolute(url) ? url : fileURLToPath(url);
    } catch {
      return undefined;
    }
    for (const gitDir of [path.join(dir, '.git'), dir]) {
      let config: string;
      try {
        if (!(await stat(gitDir)).isDirectory()) continue;
        config = await readFile(path.join(gitDir, 'config'), 'utf8');
      } catch {
        continue;
      }
      if (REPO_CONFIG_AFFECTING_ARCHIVE.test(config)) return undefined;
      if (await exists(path.join(gitDir, 'info', 'attributes'))) return undefined;
      return gitDir;
    }
    return undefined;
  }

  private async withScratch<T>(fn: (repo: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(path.join(this.ctx.tmpDir ?? os.tmpdir(), 'slipway-git-'));
    try {
      // The minimal bare repository git recognises (gitrepository-layout: HEAD, objects/, refs/),
      // written here rather than by `git init`: one process less per template, and none of the
      // sample hooks init copies (a dozen files written and deleted per fetch).
      await mkdir(path.join(dir, 'objects'));
      await mkdir(path.join(dir, 'refs'));
      await writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * For a repository on this machine, the serving side (upload-pack and its pack-objects) is our
   * own child: with git's default 1 GiB pack windows it maps the whole pack, so its memory grows
   * with the template (250 MB for a 250 MB template). Small windows keep it flat. (Client `-c`
   * settings do not reach a local upload-pack; a remote host's upload-pack is not ours to tune.)
   */
  private localUploadPack(): string[] {
    if (!this.location.identity.startsWith('file://')) return [];
    return ['--upload-pack', `git ${SMALL_PACK_WINDOWS.join(' ')} upload-pack`];
  }

  /** Fetches just the pinned commit (shallow), falling back to a full fetch when the server refuses a SHA. */
  private async fetchCommit(repo: string, sha: string): Promise<void> {
    const { url } = this.location;
    // A scratch repository is removed right after: no auto-maintenance, and no fsync (each one
    // stalls every file the other templates are writing on the same file system).
    const shallow = await this.git(
      [
        '-c',
        'maintenance.auto=false',
        '-c',
        'core.fsync=none',
        'fetch',
        '--quiet',
        '--no-tags',
        ...this.localUploadPack(),
        '--depth',
        '1',
        url,
        sha,
      ],
      repo,
    );
    if (shallow.code !== 0) {
      this.throwIfUnreachableOrDenied(shallow.stderr);
      // Servers without uploadpack.allowReachableSHA1InWant refuse a SHA; every ref is the fallback.
      const full = await this.git(
        [
          'fetch',
          '--quiet',
          '--no-tags',
          ...this.localUploadPack(),
          url,
          '+refs/heads/*:refs/slipway/heads/*',
          '+refs/tags/*:refs/slipway/tags/*',
        ],
        repo,
      );
      if (full.code !== 0) {
        this.throwIfUnreachableOrDenied(full.stderr);
        throw this.failure('could not fetch', full.stderr);
      }
    }
  }

  /** Throws COMMIT_NOT_FOUND unless `sha` is a commit in `repo` (not missing, not a tag object). */
  private async verifyCommit(repo: string, sha: string): Promise<void> {
    const resolved = await this.git(['rev-parse', '--verify', '--quiet', `${sha}^{commit}`], repo);
    if (resolved.code !== 0) {
      throw new SlipwayError(
        'COMMIT_NOT_FOUND',
        `template "${this.ctx.subject}": commit ${sha} does not exist in ${this.location.display}`,
        {
          resource: this.description,
          hint: 'push the commit to the template repository, or pin a commit that exists there (`git ls-remote` lists its branches)',
        },
      );
    }
    if (resolved.stdout.trim() !== sha) {
      throw new SlipwayError(
        'COMMIT_NOT_FOUND',
        `template "${this.ctx.subject}": ${sha} in ${this.location.display} is not a commit (it resolves to commit ${resolved.stdout.trim()})`,
        { resource: this.description, hint: 'pin the commit id, not an annotated tag object' },
      );
    }
  }

  /** Throws SOURCE_FETCH_FAILED unless the commit has the directory `subdir`. */
  private async verifySubdir(repo: string, sha: string): Promise<void> {
    const t = await this.git(['cat-file', '-t', `${sha}:${this.subdir}`], repo);
    if (t.code !== 0 || t.stdout.trim() !== 'tree') {
      throw new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.description} has no directory "${this.subdir}" at commit ${sha}`,
        {
          resource: this.description,
          hint: 'check "subdir" against the repository at the pinned commit',
        },
      );
    }
  }

  private throwIfUnreachableOrDenied(stderr: string): void {
    if (
      /Could not resolve host|Failed to connect|Connection refused|Connection timed out|Couldn't connect|Network is unreachable|No route to host|Operation timed out|Operation too slow|Could not resolve hostname/i.test(
        stderr,
      )
    ) {
      throw new SlipwayError(
        'GIT_HOST_UNREACHABLE',
        `template "${this.ctx.subject}": cannot reach ${this.location.display}: ${this.tail(stderr)}`,
        {
          resource: this.description,
          hint: 'check the URL and your network or VPN; the git host did not answer',
        },
      );
    }
    if (
      /Authentication failed|returned error: 40[13]|HTTP 40[13]|could not read Username|could not read Password|terminal prompts disabled|Permission denied \(publickey/i.test(
        stderr,
      )
    ) {
      throw new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.location.display} refused access: ${this.tail(stderr)}`,
        {
          resource: this.description,
          hint: 'set SLIPWAY_GIT_TOKEN to a token that can read the repository (it is sent as an HTTP header, never in the URL)',
        },
      );
    }
    if (/does not appear to be a git repository|Repository not found|returned error: 404/i.test(stderr)) {
      throw new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.location.display} is not a git repository git can read: ${this.tail(stderr)}`,
        { resource: this.description, hint: 'check the "git" URL or path of the template' },
      );
    }
  }

  private failure(what: string, stderr: string): SlipwayError {
    return new SlipwayError(
      'SOURCE_FETCH_FAILED',
      `template "${this.ctx.subject}": ${what} ${this.location.display}: ${this.tail(stderr)}`,
      {
        resource: this.description,
        hint: 'run with --verbose for git output; check the source URL and credentials',
      },
    );
  }

  /** The last lines of git's stderr, redacted: it may echo URLs and headers. */
  private tail(stderr: string): string {
    const lines = stderr.trim().split('\n').filter(Boolean).slice(-3);
    return this.ctx.redactor.redact(lines.join('; ') || 'no output from git');
  }

  private git(args: string[], cwd: string | undefined): Promise<GitResult> {
    const fullArgs = cwd === undefined ? args : ['-C', cwd, ...args];
    return new Promise((resolve, reject) => {
      execFile(
        'git',
        fullArgs,
        {
          env: this.env,
          maxBuffer: 16 * 1024 * 1024,
          // One git command (a fetch of a pinned commit) is one operation: it gets the deadline.
          timeout: this.timeouts.operationMs,
          killSignal: 'SIGKILL',
          ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
        },
        (err, stdout, stderr) => {
          if (err && (err as { killed?: boolean }).killed && !this.ctx.signal?.aborted) {
            reject(
              new SlipwayError(
                'GIT_HOST_UNREACHABLE',
                `template "${this.ctx.subject}": git ${args[0]} from ${this.location.display} did not finish within ${formatDuration(this.timeouts.operationMs)}`,
                {
                  resource: this.description,
                  hint: 'the git host accepted the connection but stopped answering: check it (or your network), or raise --timeout / SLIPWAY_TIMEOUT',
                },
              ),
            );
            return;
          }
          if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
            reject(this.spawnError(err));
            return;
          }
          const code = err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
    });
  }

  private spawnError(err: Error): SlipwayError {
    if (this.ctx.signal?.aborted || err.name === 'AbortError')
      return new SlipwayError('INTERRUPTED', `template "${this.ctx.subject}": fetch interrupted`, {
        resource: this.ctx.subject,
      });
    const code = (err as NodeJS.ErrnoException).code;
    return new SlipwayError(
      'SOURCE_FETCH_FAILED',
      code === 'ENOENT'
        ? 'the git binary was not found'
        : `could not run git: ${this.ctx.redactor.redact(err.message)}`,
      { resource: this.description, hint: 'install git (2.25 or newer) and make sure it is on PATH' },
    );
  }

  /**
   * Streams `git archive` of commit `sha` (only `subdir`, when set) into the safe extractor, and
   * checks what arrived: the commit id git writes in the archive's header must be `sha` itself
   * (an annotated tag would name its commit), and the subdirectory must be there. Not ok, with
   * git's messages, when git fails or the checks do not hold; refusals of unsafe entries throw.
   */
  private async archive(
    where: readonly string[],
    sha: string,
    dest: string,
    observer: ExtractObserver | undefined,
    copy: string | undefined,
  ): Promise<{ ok: boolean; stderr: string }> {
    // One listener on the run's signal per archive, not one per process and stream below: a run
    // stages several templates at once on the same signal.
    const stop = new AbortController();
    const forward = () => stop.abort();
    this.ctx.signal?.addEventListener('abort', forward, { once: true });
    if (this.ctx.signal?.aborted) stop.abort();
    let ok = false;
    try {
      const result = await this.archiveOnce(where, sha, dest, observer, copy, stop.signal);
      ok = result.ok;
      return result;
    } finally {
      this.ctx.signal?.removeEventListener('abort', forward);
      // A copy of a tree that failed its checks is no copy of the pinned tree.
      if (!ok && copy !== undefined) await rm(copy, { recursive: true, force: true });
    }
  }

  private async archiveOnce(
    where: readonly string[],
    sha: string,
    dest: string,
    observer: ExtractObserver | undefined,
    copy: string | undefined,
    signal: AbortSignal,
  ): Promise<{ ok: boolean; stderr: string }> {
    // Git's memory stays flat whatever the template's size: small pack windows (by default git
    // maps 1 GiB windows, so reading a 250 MB pack counts 250 MB mapped), and blobs over 1 MiB
    // streamed into the archive instead of read whole first.
    const args = [
      ...SMALL_PACK_WINDOWS,
      '-c',
      'core.bigFileThreshold=1m',
      '--literal-pathspecs',
      ...where,
      'archive',
      '--format=tar',
      sha,
    ];
    if (this.subdir) args.push(this.subdir);
    // The system's tar writes the files (beside this thread) while the checks below read the
    // same bytes; without one, the extractor writes them itself. The archive is piped before the
    // next await, or Node discards what an exited child wrote and nobody read (flushStdio).
    await mkdir(dest, { recursive: true });
    const strip = this.subdir ? this.subdir.split('/').length : 0;
    const teed = (await TeedArchive.usable(this.env))
      ? TeedArchive.open(dest, strip, ['git', ...args], this.env, {
          signal,
          copy,
          quietMs: this.timeouts.requestMs,
        })
      : null;
    const run = teed
      ? { stdout: teed.stdout, stop: () => teed.stop(), done: teed.result() }
      : this.archiveAlone(args, signal);
    run.done.catch(() => {});
    const header = new ArchiveCommitTap();
    const archive = run.stdout.pipe(header);
    let result: { subdirFound: boolean };
    try {
      result = await extractTar(archive, dest, {
        subject: this.ctx.subject,
        ...(this.subdir ? { subdir: this.subdir } : {}),
        signal,
        ...(observer ? { observer } : {}),
        ...(teed ? { checkOnly: true } : {}),
      });
    } catch (err) {
      run.stop();
      const ended = await run.done.catch(() => undefined);
      // An archive cut short because git failed is git's failure; a refused entry is the tree's.
      if (ended && ended.producer !== 0 && isSlipwayError(err, 'SOURCE_FETCH_FAILED'))
        return { ok: false, stderr: ended.producerStderr };
      throw err;
    }
    const ended = await run.done;
    return {
      ok: ended.producer === 0 && ended.tar === 0 && header.commit() === sha && result.subdirFound,
      stderr: `${ended.producerStderr}${ended.tarStderr}`,
    };
  }

  /** `git archive` alone, its output unpacked by the extractor (no usable system tar). */
  private archiveAlone(
    args: readonly string[],
    signal: AbortSignal,
  ): { stdout: Readable; stop: () => void; done: Promise<TeedResult> } {
    const child = spawn('git', args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const done = new Promise<TeedResult>((resolve, reject) => {
      child.once('error', (err) => reject(this.spawnError(err)));
      child.once('close', (code) =>
        resolve({ producer: code ?? 1, producerStderr: stderr, tar: 0, tarStderr: '' }),
      );
    });
    return { stdout: child.stdout, stop: () => child.kill(), done };
  }
}

/** Git options that keep its memory flat when it reads a large pack (see the upload-pack note above). */
const SMALL_PACK_WINDOWS = ['-c', 'core.packedGitWindowSize=4m', '-c', 'core.packedGitLimit=16m'];

/** Configuration keys in a repository's own config that change the bytes `git archive` writes. */
const REPO_CONFIG_AFFECTING_ARCHIVE =
  /^\s*(\[\s*(include|includeIf|tar)\b|(autocrlf|eol|attributesFile|safecrlf)\s*=)/im;

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Passes a `git archive` tar through, reading the commit id git writes into its first block: a
 * pax global header whose `comment` record is the id of the commit archived.
 */
class ArchiveCommitTap extends Transform {
  private head = Buffer.alloc(0);

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null, data?: Buffer) => void,
  ): void {
    if (this.head.length < HEAD_BYTES)
      this.head = Buffer.concat([this.head, chunk.subarray(0, HEAD_BYTES - this.head.length)]);
    done(null, chunk);
  }

  /** The commit id of the archive, or undefined when its header names none. */
  commit(): string | undefined {
    const h = this.head;
    // ustar: typeflag at 156, size (octal) at 124; 'g' is a pax global header, its records follow.
    if (h.length < 512 || h[156] !== 0x67) return undefined;
    const size = Number.parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim(), 8);
    if (!Number.isInteger(size) || size <= 0 || 512 + size > h.length) return undefined;
    const records = h.subarray(512, 512 + size).toString('utf8');
    return /(?:^|\n)\d+ comment=([0-9a-f]{40})\n/.exec(records)?.[1];
  }
}

/** A pax global header and its records fit in the first two 512-byte blocks. */
const HEAD_BYTES = 1024;
