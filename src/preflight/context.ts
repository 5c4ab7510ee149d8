import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import dockerignore, { type Ignore } from '@balena/dockerignore';
import pLimit from 'p-limit';
import { pack } from 'tar-stream';
import { SlipwayError } from '../core/errors.js';
import { sha256Hex, type TreeEntry, treeDigest } from '../core/tree-digest.js';

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

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

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

  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? abs : path.join(abs, rel))).sort(byBytes);
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(abs, relPath);
      const s = await lstat(full);
      const excluded = ig.ignores(relPath);
      if (s.isDirectory()) {
        // Mirrors docker/cli's walk: skip an excluded directory unless an exception lies below it.
        if (excluded && !exceptions.some((e) => `${e}/`.startsWith(`${relPath}/`))) continue;
        if (!excluded) entries.push({ path: relPath, type: 'directory', mode: 0o755, abs: full, size: 0 });
        await walk(relPath);
      } else if (!excluded && (s.isFile() || s.isSymbolicLink())) {
        entries.push({
          path: relPath,
          type: s.isFile() ? 'file' : 'symlink',
          mode: s.isFile() && (s.mode & 0o100) !== 0 ? 0o755 : s.isFile() ? 0o644 : 0o777,
          abs: full,
          size: s.isFile() ? s.size : 0,
        });
      }
    }
  };
  await walk('');
  entries.sort((a, b) => byBytes(a.path, b.path));
  return { dir: abs, entries, ignore: ig, patterns };
}

/** Files up to this size are read whole (and read ahead); larger ones are streamed, so memory stays flat. */
const WHOLE_FILE_LIMIT = 1024 * 1024;

/** How many small files are read ahead of the one being hashed or packed. */
const READ_AHEAD = 16;

/** sha256 hex of a context file, read whole when small and streamed when large. */
async function hashFile(abs: string, size: number): Promise<string> {
  if (size <= WHOLE_FILE_LIMIT) return sha256Hex(await readFile(abs));
  const hash = createHash('sha256');
  await pipeline(createReadStream(abs), hash);
  return hash.digest('hex');
}

/** The tree digest (core/tree-digest.ts) of the files and symlinks a context sends. */
export async function contextDigest(context: BuildContext): Promise<string> {
  const limit = pLimit(READ_AHEAD);
  const tree: TreeEntry[] = await Promise.all(
    context.entries
      .filter((e) => e.type !== 'directory')
      .map(async (e) => ({
        path: e.path,
        type: e.type as 'file' | 'symlink',
        mode: e.mode,
        sha256: await limit(async () =>
          e.type === 'file' ? hashFile(e.abs, e.size) : sha256Hex(Buffer.from(await readlink(e.abs))),
        ),
      })),
  );
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
 */
export function packContext(context: BuildContext, extra: readonly ExtraEntry[] = []): Readable {
  const tar = pack();
  const header = { uid: 0, gid: 0, uname: '', gname: '', mtime: MTIME };
  const extraPaths = new Set(extra.map((e) => e.path));
  void (async () => {
    try {
      for (const e of extra) {
        await entry(
          tar,
          { ...header, name: e.path, type: 'file', mode: 0o644, size: e.content.length },
          e.content,
        );
      }
      const entries = context.entries.filter((e) => !extraPaths.has(e.path));
      // Small files are read a few ahead of the tar writer: their reads overlap instead of queueing.
      const ahead = new Map<number, Promise<Buffer>>();
      const readAhead = (from: number) => {
        for (let j = from; j < entries.length && j < from + READ_AHEAD; j += 1) {
          const f = entries[j];
          if (f && !ahead.has(j) && f.type === 'file' && f.size <= WHOLE_FILE_LIMIT) {
            const read = readFile(f.abs);
            read.catch(() => {});
            ahead.set(j, read);
          }
        }
      };
      for (let i = 0; i < entries.length; i += 1) {
        const e = entries[i] as ContextEntry;
        readAhead(i);
        const small = ahead.get(i);
        ahead.delete(i);
        if (e.type === 'directory') {
          await entry(tar, { ...header, name: e.path, type: 'directory', mode: e.mode });
        } else if (e.type === 'symlink') {
          await entry(tar, {
            ...header,
            name: e.path,
            type: 'symlink',
            mode: e.mode,
            linkname: await readlink(e.abs),
          });
        } else if (small) {
          const content = await small;
          if (content.length !== e.size) throw new Error(`${e.path} changed size while it was packed`);
          await entry(tar, { ...header, name: e.path, type: 'file', mode: e.mode, size: e.size }, content);
        } else {
          await fileEntry(tar, { ...header, name: e.path, type: 'file', mode: e.mode, size: e.size }, e.abs);
        }
      }
      tar.finalize();
    } catch (err) {
      tar.destroy(err as Error);
    }
  })();
  return tar as unknown as Readable;
}

type Pack = ReturnType<typeof pack>;
type Header = Parameters<Pack['entry']>[0];

function entry(tar: Pack, header: Header, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content === undefined) tar.entry(header, cb);
    else tar.entry(header, content, cb);
  });
}

function fileEntry(tar: Pack, header: Header, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = tar.entry(header, (err?: Error | null) => (err ? reject(err) : resolve()));
    const src = createReadStream(file);
    src.on('error', (err) => {
      sink.destroy(err);
      reject(err);
    });
    src.pipe(sink);
  });
}
