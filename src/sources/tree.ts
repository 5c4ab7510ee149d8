import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { sha256Hex, type TreeEntry, treeDigest } from '../core/tree-digest.js';
import { SCAN_MAX_BYTES, scanContent } from './content-scan.js';
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

/** How many files are read, hashed or written at once: enough to keep the disk and thread pool busy. */
const FILE_CONCURRENCY = 16;

/** Files up to this size are read whole; larger ones are streamed, so memory stays flat. */
const WHOLE_FILE_LIMIT = 1024 * 1024;

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
async function walk(root: string, subject: string): Promise<FoundEntry[]> {
  const realRoot = await realpath(root);
  const out: FoundEntry[] = [];
  async function visit(dir: string, prefix: string): Promise<void> {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (isGitPath(rel)) continue;
      const abs = path.join(dir, name);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        await visit(abs, rel);
      } else if (st.isFile()) {
        out.push({ path: rel, type: 'file', mode: st.mode, abs, size: st.size });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        const why = unsafeLinkTarget(rel, target);
        if (why !== undefined) throw refused(subject, rel, `is a symlink that ${why}`);
        // A chain of in-tree links can still lead out (`a -> s/..` with `s -> .`): check the real path.
        const real = await realpath(abs).catch(() => undefined);
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

/** sha256 hex of a file, read whole when small and streamed when large. */
async function hashFile(abs: string, size: number): Promise<string> {
  if (size <= WHOLE_FILE_LIMIT) return sha256Hex(await readFile(abs));
  const hash = createHash('sha256');
  await pipeline(createReadStream(abs), hash);
  return hash.digest('hex');
}

/** Copies a file to `target` (which must not exist) with `mode`, hashing it on the way: one read. */
async function copyAndHash(abs: string, size: number, target: string, mode: number): Promise<string> {
  if (size <= WHOLE_FILE_LIMIT) {
    const content = await readFile(abs);
    await writeFile(target, content, { flag: 'wx', mode });
    return sha256Hex(content);
  }
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(abs),
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createWriteStream(target, { flags: 'wx', mode }),
  );
  return hash.digest('hex');
}

/** The entries with every file's sha256 filled in by `hashOf` (run a few files at a time). */
async function withHashes(
  entries: readonly FoundEntry[],
  hashOf: (e: FoundEntry) => Promise<string>,
): Promise<TreeEntry[]> {
  const limit = pLimit(FILE_CONCURRENCY);
  return Promise.all(
    entries.map(async (e) => ({
      path: e.path,
      type: e.type,
      mode: e.mode,
      sha256: e.sha256 ?? (await limit(() => hashOf(e))),
    })),
  );
}

/** Digest, file count and byte count of a tree on disk (for checking a staged tree against its receipt). */
export async function digestDirectory(
  dir: string,
  subject = dir,
): Promise<{ digest: string; files: number; bytes: number }> {
  const entries = await walk(dir, subject);
  return {
    digest: treeDigest(await withHashes(entries, (e) => hashFile(e.abs, e.size))),
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
): Promise<MaterialiseResult> {
  const found = await walk(src, options.subject);
  const selected = selectionFilter(options.include, options.exclude);
  const allowed = allowSensitiveFilter(options.allowSensitive);
  const staged = found.filter((e) => selected(e.path));
  const sensitive: ErrorDetail[] = [];
  const allowedSensitive: ErrorDetail[] = [];
  const mode = options.sensitive ?? 'refuse';
  // The name decides first; otherwise the content (file:line, never the value). Files over the
  // scanner's limit are not read again: the scanner would skip them anyway.
  const fileLimit = pLimit(FILE_CONCURRENCY);
  const checks = await Promise.all(
    (mode === 'ignore' ? [] : staged).map((e) =>
      fileLimit(async () => {
        if (e.type !== 'file') return null;
        const content = e.size <= SCAN_MAX_BYTES ? await readFile(e.abs) : undefined;
        const reason = sensitiveReason(e.path, needsContentCheck(e.path) ? content : undefined);
        const problems =
          reason !== undefined
            ? [{ at: e.path, message: `looks like ${reason}` }]
            : content === undefined
              ? []
              : scanContent(content).map((f) => ({ at: `${e.path}:${f.line}`, message: `holds ${f.what}` }));
        return { allowed: allowed(e.path), problems };
      }),
    ),
  );
  for (const c of checks) {
    if (c) (c.allowed ? allowedSensitive : sensitive).push(...c.problems);
  }
  if (sensitive.length > 0 && mode === 'refuse') {
    throw new SlipwayError(
      'STAGING_REFUSED',
      `template "${options.subject}" holds ${sensitive.length} credential-looking file${sensitive.length === 1 ? '' : 's'}: ${sensitive.map((d) => `${d.at} (${d.message})`).join(', ')}`,
      {
        resource: options.subject,
        details: sensitive,
        hint: `remove them from the template, leave them out with "exclude", or, if they are deliberately public (a test key), list them in templates.${options.subject}.allowSensitive`,
      },
    );
  }
  await mkdir(dest, { recursive: true });
  const dirs = [...new Set(staged.map((e) => path.posix.dirname(e.path)))].filter((d) => d !== '.').sort();
  for (const d of dirs) await mkdir(path.join(dest, ...d.split('/')), { recursive: true });
  const stagedSet = new Set(staged);
  const hashed = await withHashes(found, async (e) => {
    if (!stagedSet.has(e)) return hashFile(e.abs, e.size);
    const target = path.join(dest, ...e.path.split('/'));
    return copyAndHash(e.abs, e.size, target, (e.mode & 0o100) !== 0 ? 0o755 : 0o644);
  });
  const limit = pLimit(FILE_CONCURRENCY);
  await Promise.all(
    staged
      .filter((e) => e.type === 'symlink')
      .map((e) => limit(() => symlink(e.linkTarget ?? '', path.join(dest, ...e.path.split('/'))))),
  );
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

/** The `required` paths missing from the staged entries (a path may name a file, symlink or directory). */
export function missingRequired(entries: readonly TreeEntry[], required: readonly string[]): string[] {
  const paths = new Set(entries.map((e) => e.path));
  const prefixes = entries.map((e) => `${e.path}/`);
  return required.filter((r) => {
    const n = path.posix.normalize(r).replace(/^\.\//, '').replace(/\/+$/, '');
    return !paths.has(n) && !prefixes.some((p) => p.startsWith(`${n}/`));
  });
}
