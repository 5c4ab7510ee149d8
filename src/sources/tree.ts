import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  constants as fsConstants,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { sha256Hex, type TreeEntry, treeDigest } from '../core/tree-digest.js';
import { SCAN_MAX_BYTES, scanContent } from './content-scan.js';
import type { ExtractObserver } from './extract.js';
import {
  allowSensitiveFilter,
  isGitPath,
  needsContentCheck,
  selectionFilter,
  sensitiveReason,
  unsafeLinkTarget,
} from './rules.js';

/** A file or symlink found in a tree: where it is, and for symlinks their target and its digest. */
interface FoundEntry {
  readonly path: string;
  readonly type: 'file' | 'symlink';
  readonly mode: number;
  readonly abs: string;
  readonly linkTarget?: string;
  /** Known for symlinks at walk time; files are hashed while they are copied. */
  readonly sha256?: string;
  readonly size: number;
}

/** Files up to this size are read whole (and scanned: the scanner's own limit); larger ones go through one buffer. */
const WHOLE_FILE_LIMIT = SCAN_MAX_BYTES;

function refused(subject: string, rel: string, why: string): SlipwayError {
  return new SlipwayError('STAGING_REFUSED', `template "${subject}": "${rel}" ${why}`, {
    resource: rel,
    hint: 'templates may hold regular files, directories and symlinks that stay inside the template; fix the template',
  });
}

/**
 * Every file and symlink under `root` except `.git`, sorted by path, without content. Refuses
 * special files (fifos, sockets, devices) and symlinks that resolve outside `root`.
 */
async function walk(
  root: string,
  subject: string,
  seen: { git: boolean } = { git: false },
): Promise<FoundEntry[]> {
  const realRoot = realpathSync.native(root);
  const out: FoundEntry[] = [];
  const pause = pauser();
  // Synchronous calls, a turn of the event loop every few thousand entries: a thread-pool round
  // trip per lstat costs several times the call itself, and templates run side by side.
  async function visit(dir: string, prefix: string): Promise<void> {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      await pause(1);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (isGitPath(rel)) {
        seen.git = true;
        continue;
      }
      const abs = path.join(dir, name);
      const st = lstatSync(abs);
      if (st.isDirectory()) {
        await visit(abs, rel);
      } else if (st.isFile()) {
        out.push({ path: rel, type: 'file', mode: st.mode, abs, size: st.size });
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(abs);
        const why = unsafeLinkTarget(rel, target);
        if (why !== undefined) throw refused(subject, rel, `is a symlink that ${why}`);
        // A chain of in-tree links can still lead out (`a -> s/..` with `s -> .`): check the real path.
        let real: string | undefined;
        try {
          real = realpathSync.native(abs);
        } catch {
          real = undefined;
        }
        if (real !== undefined && real !== realRoot && !real.startsWith(`${realRoot}${path.sep}`))
          throw refused(subject, rel, `is a symlink that resolves outside the template (${target})`);
        out.push({
          path: rel,
          type: 'symlink',
          mode: 0o120000,
          abs,
          sha256: sha256Hex(target),
          linkTarget: target,
          size: 0,
        });
      } else {
        throw refused(subject, rel, 'is not a regular file, directory or symlink (a device, fifo or socket)');
      }
    }
  }
  await visit(root, '');
  return out;
}

/** Work done between two turns of the event loop (one unit per entry, and per 64 KiB read). */
const SLICE_UNITS = 2048;

/** A counter that yields to the event loop once `SLICE_UNITS` units of synchronous work were done. */
function pauser(): (units: number) => Promise<void> | undefined {
  let done = 0;
  return (units) => {
    done += units;
    if (done < SLICE_UNITS) return undefined;
    done = 0;
    return new Promise((resolve) => setImmediate(resolve));
  };
}

/** Reads until `buf` is full or the file ends; returns the bytes read. */
function readFull(fd: number, buf: Buffer): number {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, null);
    if (n === 0) break;
    off += n;
  }
  return off;
}

/**
 * Reads a file once: returns its sha256 and, when it is small enough to scan, its content; when
 * `target` is given, writes the bytes there (created exclusively, with `mode`) as they are read.
 * Large files go through one reusable buffer, so memory stays flat.
 */
function readHashCopy(
  abs: string,
  size: number,
  buf: Buffer,
  target?: { path: string; mode: number },
): { sha256: string; content: Buffer | undefined } {
  const hash = createHash('sha256');
  const fd = openSync(abs, 'r');
  let out: number | undefined;
  try {
    out = target ? openSync(target.path, 'wx', target.mode) : undefined;
    if (size <= WHOLE_FILE_LIMIT) {
      const content = readFileSync(fd);
      hash.update(content);
      if (out !== undefined) writeAll(out, content);
      return { sha256: hash.digest('hex'), content };
    }
    for (;;) {
      const n = readFull(fd, buf);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      if (out !== undefined) writeAll(out, chunk);
    }
    return { sha256: hash.digest('hex'), content: undefined };
  } finally {
    closeSync(fd);
    if (out !== undefined) closeSync(out);
  }
}

/** A hard link to `abs` at `target`; a copy with `mode` where the file systems differ or links are refused. */
function linkOrCopy(abs: string, target: string, mode: number): void {
  try {
    linkSync(abs, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
    copyFileSync(abs, target, fsConstants.COPYFILE_EXCL);
    chmodSync(target, mode);
  }
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Digest, file count and byte count of a tree on disk (for checking a staged tree against its receipt). */
export async function digestDirectory(
  dir: string,
  subject = dir,
): Promise<{ digest: string; files: number; bytes: number }> {
  const entries = await walk(dir, subject);
  const buf = Buffer.allocUnsafe(WHOLE_FILE_LIMIT);
  const pause = pauser();
  const tree: TreeEntry[] = [];
  for (const e of entries) {
    await pause(1 + Math.floor(e.size / 65_536));
    const sha256 = e.sha256 ?? readHashCopy(e.abs, e.size, buf).sha256;
    tree.push({ path: e.path, type: e.type, mode: e.mode, sha256 });
  }
  return {
    digest: treeDigest(tree),
    files: entries.length,
    bytes: entries.reduce((n, e) => n + e.size, 0),
  };
}

/** Which files a template stages: its include/exclude globs and credential allow-list. */
export interface SelectionOptions {
  /** Names the template in errors. */
  readonly subject: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly allowSensitive?: readonly string[];
  /**
   * What to do with credential-looking files not matched by `allowSensitive`: refuse them
   * (default), stage them and report them, or ignore the check (a raw copy checked later).
   */
  readonly sensitive?: 'refuse' | 'warn' | 'ignore';
}

/** What {@link materialise} staged. */
export interface MaterialiseResult {
  /** Digest of the whole source tree (minus `.git`), before selection: checks a cached copy. */
  readonly sourceDigest: string;
  /** The staged entries (for the tree digest and `required` checks). */
  readonly entries: readonly TreeEntry[];
  readonly digest: string;
  readonly files: number;
  readonly bytes: number;
  /** Credential-looking files staged anyway (only with `sensitive: 'warn'`), `file` or `file:line`. */
  readonly sensitiveStaged: readonly string[];
  /** Credential-looking files staged because `allowSensitive` lists them, each with what it looks like. */
  readonly allowedSensitive: readonly ErrorDetail[];
}

/**
 * Copies the selected files of the tree at `src` into the empty directory `dest`: drops `.git`
 * and what `include`/`exclude` leave out, refuses credential-looking files not allowed by
 * `allowSensitive` (all of them in one error) and anything that could escape the template.
 */
export async function materialise(
  src: string,
  dest: string,
  options: SelectionOptions,
  how: MaterialiseHow = {},
): Promise<MaterialiseResult> {
  const found = await walk(src, options.subject);
  return stageFound(found, dest, options, how);
}

/** How {@link materialise} puts a file into `dest`. */
export interface MaterialiseHow {
  /**
   * Hard-link files instead of copying them: only for a source Slipway owns (its cache), never a
   * user's tree. A cached file edited through the staged link no longer matches the cache entry's
   * digest, so the next run fetches it again. Falls back to a copy across file systems.
   */
  readonly link?: boolean;
}

/**
 * Checks a freshly fetched tree where it lies, as {@link materialise} would stage it into an empty
 * directory, without copying a file: every file is read once (hashed, scanned). Null when the
 * tree cannot be staged in place (the template selects files with include/exclude, or the tree
 * holds a `.git` path): copy it with {@link materialise} instead. A refusal leaves `dir` to the caller.
 */
export async function materialiseInPlace(
  dir: string,
  options: SelectionOptions,
): Promise<MaterialiseResult | null> {
  if ((options.include?.length ?? 0) > 0 || (options.exclude?.length ?? 0) > 0) return null;
  const seen = { git: false };
  const found = await walk(dir, options.subject, seen);
  if (seen.git) return null;
  return stageFound(found, null, options, {});
}

/** Hashes and checks `found`, copying (or linking) the selected entries into `dest` (null: they are already in place). */
async function stageFound(
  found: readonly FoundEntry[],
  dest: string | null,
  options: SelectionOptions,
  how: MaterialiseHow,
): Promise<MaterialiseResult> {
  const selected = selectionFilter(options.include, options.exclude);
  const allowed = allowSensitiveFilter(options.allowSensitive);
  const sensitive: ErrorDetail[] = [];
  const allowedSensitive: ErrorDetail[] = [];
  const mode = options.sensitive ?? 'refuse';
  const staged = found.filter((e) => selected(e.path));
  const stagedSet = new Set(staged);
  if (dest !== null) {
    await mkdir(dest, { recursive: true });
    const dirs = [...new Set(staged.map((e) => path.posix.dirname(e.path)))].filter((d) => d !== '.').sort();
    for (const d of dirs) mkdirSync(path.join(dest, ...d.split('/')), { recursive: true });
  }
  // One read per file: hashed, scanned (the name decides first; otherwise the content, file:line,
  // never the value) and written to `dest` from the same bytes. Files over the scanner's limit
  // are not scanned: the scanner would skip them anyway.
  const buf = Buffer.allocUnsafe(WHOLE_FILE_LIMIT);
  const pause = pauser();
  const hashed: TreeEntry[] = [];
  try {
    for (const e of found) {
      await pause(1 + Math.floor(e.size / 65_536));
      const isStaged = stagedSet.has(e);
      if (e.type === 'symlink') {
        if (isStaged && dest !== null) symlinkSync(e.linkTarget ?? '', path.join(dest, ...e.path.split('/')));
        hashed.push({ path: e.path, type: e.type, mode: e.mode, sha256: e.sha256 ?? '' });
        continue;
      }
      const target =
        isStaged && dest !== null
          ? { path: path.join(dest, ...e.path.split('/')), mode: (e.mode & 0o100) !== 0 ? 0o755 : 0o644 }
          : undefined;
      const { sha256, content } = readHashCopy(e.abs, e.size, buf, how.link ? undefined : target);
      if (target && how.link) linkOrCopy(e.abs, target.path, target.mode);
      hashed.push({ path: e.path, type: e.type, mode: e.mode, sha256 });
      if (!isStaged || mode === 'ignore') continue;
      (allowed(e.path) ? allowedSensitive : sensitive).push(...credentialProblems(e.path, content));
    }
    if (mode === 'refuse') refuseSensitive(options.subject, sensitive);
  } catch (err) {
    // Nothing refused (or half-copied) stays behind in `dest`.
    if (dest !== null) await rm(dest, { recursive: true, force: true });
    throw err;
  }
  const byPath = new Map(hashed.map((e) => [e.path, e]));
  const entries: TreeEntry[] = staged.map((e) => byPath.get(e.path) as TreeEntry);
  return {
    sourceDigest: treeDigest(hashed),
    entries,
    digest: treeDigest(entries),
    files: staged.length,
    bytes: staged.reduce((n, e) => n + e.size, 0),
    sensitiveStaged: sensitive.map((d) => d.at),
    allowedSensitive,
  };
}

/** What looks like a credential in a file: its name, else (when its bytes are at hand) its content, `file:line`, never the value. */
function credentialProblems(rel: string, content: Buffer | undefined): ErrorDetail[] {
  const reason = sensitiveReason(rel, needsContentCheck(rel) ? content : undefined);
  if (reason !== undefined) return [{ at: rel, message: `looks like ${reason}` }];
  if (content === undefined) return [];
  return scanContent(content).map((f) => ({ at: `${rel}:${f.line}`, message: `holds ${f.what}` }));
}

/** Throws STAGING_REFUSED listing every credential-looking file, when there is one. */
function refuseSensitive(subject: string, sensitive: readonly ErrorDetail[]): void {
  if (sensitive.length === 0) return;
  throw new SlipwayError(
    'STAGING_REFUSED',
    `template "${subject}" holds ${sensitive.length} credential-looking file${sensitive.length === 1 ? '' : 's'}: ${sensitive.map((d) => `${d.at} (${d.message})`).join(', ')}`,
    {
      resource: subject,
      details: [...sensitive],
      hint: `remove them from the template, leave them out with "exclude", or, if they are deliberately public (a test key), list them in templates.${subject}.allowSensitive`,
    },
  );
}

/** Orders POSIX paths as the directory walk visits them: segment by segment. */
function walkOrder(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i] as string;
    const y = bs[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return as.length - bs.length;
}

/**
 * Checks a tree while it is written (an {@link ExtractObserver} given to the extractor): the
 * writer's hashes, credential checks on the bytes in memory, nothing read back. Its result is
 * what {@link materialiseInPlace} returns for the same tree, or null when that would be null
 * (include/exclude, a `.git` path) or when the writer never reported the end of the tree.
 */
export class TreeRecorder implements ExtractObserver {
  private readonly found: Array<TreeEntry & { readonly size: number }> = [];
  /** Per file, in the order written: sorted by file at the end, a file's findings stay in line order. */
  private readonly sensitive: Array<{ rel: string; details: ErrorDetail[] }> = [];
  private readonly allowedSensitive: Array<{ rel: string; details: ErrorDetail[] }> = [];
  private readonly symlinks: Array<{ rel: string; target: string }> = [];
  private readonly allowed: (p: string) => boolean;
  private git = false;
  private ended = false;

  constructor(private readonly options: SelectionOptions) {
    this.allowed = allowSensitiveFilter(options.allowSensitive);
  }

  /** False when the template selects files: such a tree is copied, not staged in place. */
  get applies(): boolean {
    return (this.options.include?.length ?? 0) === 0 && (this.options.exclude?.length ?? 0) === 0;
  }

  file(rel: string, mode: number, size: number, sha256: string, content: Buffer | undefined): void {
    if (isGitPath(rel)) {
      this.git = true;
      return;
    }
    // The mode as lstat reports it (a regular file's type bits), as the walk records it.
    this.found.push({ path: rel, type: 'file', mode: 0o100000 | mode, sha256, size });
    if ((this.options.sensitive ?? 'refuse') === 'ignore') return;
    (this.allowed(rel) ? this.allowedSensitive : this.sensitive).push({
      rel,
      details: credentialProblems(rel, content),
    });
  }

  symlink(rel: string, target: string): void {
    if (isGitPath(rel)) {
      this.git = true;
      return;
    }
    this.found.push({ path: rel, type: 'symlink', mode: 0o120000, sha256: sha256Hex(target), size: 0 });
    this.symlinks.push({ rel, target });
  }

  end(): void {
    this.ended = true;
  }

  restart(): void {
    this.found.length = 0;
    this.sensitive.length = 0;
    this.allowedSensitive.length = 0;
    this.symlinks.length = 0;
    this.git = false;
    this.ended = false;
  }

  /** The result for the tree written at `dir` (see the class comment); throws what the walk would. */
  result(dir: string): MaterialiseResult | null {
    if (!this.ended || this.git || !this.applies) return null;
    const { subject } = this.options;
    // A chain of in-tree links can still lead out (`a -> s/..` with `s -> .`): check the real path, as the walk does.
    const realRoot = realpathSync.native(dir);
    for (const { rel, target } of this.symlinks.sort((a, b) => walkOrder(a.rel, b.rel))) {
      let real: string | undefined;
      try {
        real = realpathSync.native(path.join(dir, ...rel.split('/')));
      } catch {
        real = undefined;
      }
      if (real !== undefined && real !== realRoot && !real.startsWith(`${realRoot}${path.sep}`))
        throw refused(subject, rel, `is a symlink that resolves outside the template (${target})`);
    }
    const inWalkOrder = (list: Array<{ rel: string; details: ErrorDetail[] }>) =>
      list.sort((a, b) => walkOrder(a.rel, b.rel)).flatMap((f) => f.details);
    const sensitive = inWalkOrder(this.sensitive);
    if ((this.options.sensitive ?? 'refuse') === 'refuse') refuseSensitive(subject, sensitive);
    const entries: TreeEntry[] = this.found
      .sort((a, b) => walkOrder(a.path, b.path))
      .map(({ path: p, type, mode, sha256 }) => ({ path: p, type, mode, sha256 }));
    const digest = treeDigest(entries);
    return {
      sourceDigest: digest,
      entries,
      digest,
      files: entries.length,
      bytes: this.found.reduce((n, e) => n + e.size, 0),
      sensitiveStaged: sensitive.map((d) => d.at),
      allowedSensitive: inWalkOrder(this.allowedSensitive),
    };
  }
}

/** The `required` paths missing from the staged entries (a path may name a file, symlink or directory). */
export function missingRequired(entries: readonly TreeEntry[], required: readonly string[]): string[] {
  const paths = new Set(entries.map((e) => e.path));
  const prefixes = entries.map((e) => `${e.path}/`);
  return required.filter((r) => {
    const n = path.posix.normalize(r).replace(/^\.\//, '').replace(/\/+$/, '');
    return !paths.has(n) && !prefixes.some((p) => p.startsWith(`${n}/`));
  });
}
