import { createHash, hash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import { sortedByBytes } from '../core/byte-order.js';
import { SlipwayError } from '../core/errors.js';
import { sha256Hex, type TreeEntry, treeDigest } from '../core/tree-digest.js';
import { ContextTar, type TarMember } from './context-tar.js';

/** One entry of a build context, as the engine would receive it. */
export interface ContextEntry {
  /** POSIX path relative to the context root. */
  readonly path: string;
  readonly type: 'file' | 'symlink' | 'directory';
  /** Normalised permission bits (0o755 or 0o644 for files, 0o755 for directories). */
  readonly mode: number;
  /** Absolute path on disk. */
  readonly abs: string;
  readonly size: number;
}

/** The files a build sends, after `.dockerignore`. */
export interface BuildContext {
  /** Absolute context directory. */
  readonly dir: string;
  /** Entries sorted by path (byte order), directories included. */
  readonly entries: readonly ContextEntry[];
  /** The parsed `.dockerignore` (Docker's matching rules); `ignores(path)` is true for excluded paths. */
  readonly ignore: Ignore;
  /** The `.dockerignore` patterns as read (cleaned), for messages. */
  readonly patterns: readonly string[];
}

/**
 * Reads `.dockerignore` the way the Docker CLI does: one pattern per line, `#` comments and blank
 * lines skipped, a leading `/` dropped, paths cleaned.
 * https://docs.docker.com/build/concepts/context/#dockerignore-files
 */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    let p = negated ? line.slice(1).trim() : line;
    p = path.posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
    if (p === '' || p === '.') continue;
    out.push(negated ? `!${p}` : p);
  }
  return out;
}

// The package is CommonJS (`module.exports = factory`) typed as an ES default export.
const ignore = dockerignore as unknown as typeof dockerignore.default;

/** Work done between two turns of the event loop by the synchronous walk, digest and pack. */
const SLICE_UNITS = 4096;

/**
 * A counter that yields to the event loop (signals, timers, other streams) once `SLICE_UNITS`
 * units of synchronous work have been done since the last turn.
 */
function pauser(): (units: number) => Promise<void> | undefined {
  let done = 0;
  return (units) => {
    done += units;
    if (done < SLICE_UNITS) return undefined;
    done = 0;
    return new Promise((resolve) => setImmediate(resolve));
  };
}

/**
 * Lists the build context of `dir` after its `.dockerignore`, skipping excluded directories the
 * way the Docker CLI does (an excluded directory is still walked when an exception pattern could
 * re-include something below it).
 */
export async function readBuildContext(dir: string): Promise<BuildContext> {
  const abs = path.resolve(dir);
  const st = await lstat(abs).catch(() => null);
  if (!st?.isDirectory()) {
    throw new SlipwayError('PREFLIGHT_FAILED', `build context ${dir} is not a directory`, {
      resource: dir,
      hint: 'check the image\'s "context" in the manifest (relative to the manifest directory)',
    });
  }
  let patterns: string[] = [];
  try {
    patterns = parseDockerignore(await readFile(path.join(abs, '.dockerignore'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const ig = ignore().add(patterns);
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  const entries: ContextEntry[] = [];

  const pause = pauser();
  // `abs` is resolved (no trailing slash but at the root): joining by hand gives path.join's result.
  const base = abs.endsWith('/') ? abs : `${abs}/`;
  const anyRules = patterns.length > 0;
  // Synchronous directory calls, with a turn of the event loop every few thousand entries: on a
  // loaded machine a thread-pool round trip per lstat costs several times the call itself.
  const walk = async (rel: string): Promise<void> => {
    // The directory listing gives each entry's type: only regular files need an lstat (size, mode).
    const dirents = sortedByBytes(
      readdirSync(rel === '' ? abs : base + rel, { withFileTypes: true }),
      (d) => d.name,
    );
    for (const d of dirents) {
      const turn = pause(1);
      if (turn) await turn;
      const relPath = rel === '' ? d.name : `${rel}/${d.name}`;
      const full = base + relPath;
      const excluded = anyRules && ig.ignores(relPath);
      if (d.isDirectory()) {
        // Mirrors docker/cli's walk: skip an excluded directory unless an exception lies below it.
        if (excluded && !exceptions.some((e) => `${e}/`.startsWith(`${relPath}/`))) continue;
        if (!excluded) entries.push({ path: relPath, type: 'directory', mode: 0o755, abs: full, size: 0 });
        await walk(relPath);
      } else if (excluded) {
        // Excluded files and links are neither listed nor looked at.
      } else if (d.isSymbolicLink()) {
        entries.push({ path: relPath, type: 'symlink', mode: 0o777, abs: full, size: 0 });
      } else if (d.isFile()) {
        const s = lstatSync(full);
        if (s.isFile()) {
          entries.push({
            path: relPath,
            type: 'file',
            mode: (s.mode & 0o100) !== 0 ? 0o755 : 0o644,
            abs: full,
            size: s.size,
          });
        } else if (s.isSymbolicLink()) {
          entries.push({ path: relPath, type: 'symlink', mode: 0o777, abs: full, size: 0 });
        }
      }
    }
  };
  await walk('');
  return { dir: abs, entries: sortedByBytes(entries, (e) => e.path), ignore: ig, patterns };
}

/** Files are hashed in reads of this size. */
const READ_CHUNK = 1024 * 1024;

/**
 * sha256 hex of a context file, read synchronously into `buf` (memory stays flat). A file smaller
 * than `buf` is read with one call asking for a byte more than its listed size: a short read at
 * that size is the end of the file, hashed in one call; anything else is read on to the end.
 */
function hashFileSync(abs: string, size: number, buf: Buffer): string {
  const fd = openSync(abs, 'r');
  try {
    let n = -1;
    if (size < buf.length) {
      n = readSync(fd, buf, 0, size + 1, null);
      if (n === size) return hash('sha256', buf.subarray(0, n));
    }
    const h = createHash('sha256');
    if (n > 0) h.update(buf.subarray(0, n));
    while (n !== 0) {
      n = readSync(fd, buf, 0, buf.length, null);
      if (n > 0) h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The tree digest (core/tree-digest.ts) of the files and symlinks a context sends. */
export async function contextDigest(context: BuildContext): Promise<string> {
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  const pause = pauser();
  const tree: TreeEntry[] = [];
  for (const e of context.entries) {
    if (e.type === 'directory') continue;
    // A file counts one unit per 64 KiB read, so big files yield as often as many small ones.
    const turn = pause(1 + Math.floor(e.size / 65_536));
    if (turn) await turn;
    tree.push({
      path: e.path,
      type: e.type,
      mode: e.mode,
      sha256:
        e.type === 'file' ? hashFileSync(e.abs, e.size, buf) : sha256Hex(Buffer.from(readlinkSync(e.abs))),
    });
  }
  return treeDigest(tree);
}

/** Fixed metadata for every tar entry, so equal contexts give byte-equal tars (and equal layers). */
const MTIME = new Date('1980-01-01T00:00:00Z');

/** An extra file placed into the context tar (the Dockerfile when it lives outside the context). */
export interface ExtraEntry {
  readonly path: string;
  readonly content: Buffer;
}

/**
 * Packs a context into a tar stream: entries in byte order, uid/gid 0, fixed mtimes, normalised
 * modes; `extra` files (e.g. the Dockerfile) are added first and replace context files of that name.
 * Files are read as the stream is consumed (see ./context-tar.ts): memory stays flat.
 */
export function packContext(context: BuildContext, extra: readonly ExtraEntry[] = []): Readable {
  const extraPaths = new Set(extra.map((e) => e.path));
  const members: TarMember[] = [
    ...extra.map(
      (e): TarMember => ({
        name: e.path,
        type: 'file',
        mode: 0o644,
        size: e.content.length,
        content: e.content,
      }),
    ),
    ...context.entries
      .filter((e) => !extraPaths.has(e.path))
      .map((e): TarMember => ({ name: e.path, type: e.type, mode: e.mode, size: e.size, abs: e.abs })),
  ];
  return new ContextTar(members, { mtimeSeconds: Math.floor(MTIME.getTime() / 1000) });
}
