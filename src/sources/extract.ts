import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { isSlipwayError, messageOf, SlipwayError } from '../core/errors.js';
import { sha256Hex } from '../core/tree-digest.js';
import { unsafeEntryName, unsafeLinkTarget } from './rules.js';

/** Entries up to this size are written in one call; larger ones are streamed. */
const WHOLE_FILE_LIMIT = 1024 * 1024;

/**
 * Sees every file and symlink as it is written, so what was written can be checked and hashed
 * without reading it back (single pass). `content` is the file's bytes when it was written in
 * one piece (up to 1 MiB), else undefined; `sha256` is always its digest.
 */
export interface ExtractObserver {
  file(rel: string, mode: number, size: number, sha256: string, content: Buffer | undefined): void;
  symlink(rel: string, target: string): void;
  /** Called once the whole archive was written. */
  end(): void;
  /** Forget everything observed: the tree is about to be written again from the start. */
  restart(): void;
}

/** Options for {@link extractTar}. */
export interface ExtractOptions {
  /** Names the template in errors. */
  readonly subject: string;
  /** The stream is gzip-compressed. */
  readonly gzip?: boolean;
  /** Leading directories to strip: 1 for GitHub/Gitea archives, which wrap the tree in one. */
  readonly strip?: number;
  /** Keep only entries under this directory, re-rooted at it. */
  readonly subdir?: string;
  readonly signal?: AbortSignal;
  readonly observer?: ExtractObserver;
  /**
   * Another process (a system `tar -x`) writes this same stream into `dest`: every entry is still
   * checked, refused and reported to `observer` here, but nothing is written.
   */
  readonly checkOnly?: boolean;
}

/** What {@link extractTar} wrote. */
export interface ExtractResult {
  /** Files and symlinks written. */
  readonly entries: number;
  /** With `subdir`: whether the archive held that directory itself (always true without one). */
  readonly subdirFound: boolean;
}

/** The mode a file is written with: git's two, from the entry's owner-executable bit. */
function fileMode(h: tar.Header): number {
  return ((h.mode ?? 0o644) & 0o100) !== 0 ? 0o755 : 0o644;
}

function refused(subject: string, entry: string, why: string): SlipwayError {
  return new SlipwayError('STAGING_REFUSED', `template "${subject}": archive entry "${entry}" ${why}`, {
    resource: entry,
    hint: 'templates may hold regular files, directories and symlinks that stay inside the template; fix the template repository',
  });
}

/** Normalises a POSIX subdir (`./a/b/` -> `a/b`); '' means the root. */
export function normaliseSubdir(subdir: string | undefined): string {
  if (!subdir) return '';
  const n = path.posix
    .normalize(subdir.replace(/\\/g, '/'))
    .replace(/^\.\/?/, '')
    .replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

/**
 * Unpacks a tar stream into the empty directory `dest`, refusing every entry that could escape
 * it: absolute names, `..` segments, symlinks pointing outside, hard links, devices and fifos.
 * Files are written with O_EXCL, so a second entry can never overwrite or write through the first.
 * Modes are normalised to 0644/0755, as git stores them.
 */
export async function extractTar(
  input: Readable,
  dest: string,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const { subject } = options;
  const strip = options.strip ?? 0;
  const subdir = normaliseSubdir(options.subdir);
  // Piping starts before the first await: Node discards a child's stdout that nobody reads
  // when the child exits (child_process flushStdio), so `git archive` output could be lost.
  const rootReady = mkdir(dest, { recursive: true }).then(() => realpath(dest));
  rootReady.catch(() => {});
  let root = '';
  const extract = tar.extract();
  let top: string | undefined;
  let entries = 0;
  let subdirFound = subdir === '';
  /** Files and symlinks seen: a second entry of the same name is refused, also when another process writes. */
  const seen = new Set<string>();
  const checkedDirs = new Set<string>();
  // The callback API, not the async iterator: tar-stream's iterator can report the end before
  // the last entry when the whole archive arrives in one chunk. Each entry is fully handled
  // before `next()`, so the pipeline settles only after the last one.
  extract.on('entry', (header, stream, next) => {
    // A truncated archive errors the entry stream, possibly while `handle` is still awaiting a
    // mkdir and before its pipeline listens: without a listener that error is uncaught. The
    // same error rejects `feed` below, which reports it.
    stream.on('error', () => {});
    handle(header, stream as unknown as Readable).then(
      () => next(),
      (err: unknown) => {
        stream.resume();
        extract.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  const feed = pipeline([input, ...(options.gzip ? [createGunzip()] : []), extract], {
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // Observed below; this keeps an early mkdir failure from leaving it unobserved.
  feed.catch(() => {});
  try {
    root = await rootReady;
    await feed;
  } catch (err) {
    input.destroy();
    extract.destroy();
    if (isSlipwayError(err)) throw err;
    if (options.signal?.aborted) {
      throw new SlipwayError('INTERRUPTED', `template "${subject}": staging was interrupted`, {
        resource: subject,
      });
    }
    throw new SlipwayError(
      'SOURCE_FETCH_FAILED',
      `template "${subject}": could not unpack the archive: ${messageOf(err)}`,
      {
        resource: subject,
        hint: 'the archive is damaged or truncated; stage again, or check the source',
      },
    );
  }
  options.observer?.end();
  return { entries, subdirFound };

  async function handle(h: tar.Header, entry: Readable): Promise<void> {
    root = await rootReady;
    // git archive writes the commit id in a pax global header; it is metadata, not a file.
    const type: string = h.type ?? 'file';
    if (type === 'pax-global-header' || type === 'pax-header') {
      await drain(entry);
      return;
    }
    const rel = await place(h.name, h.type === 'directory');
    if (rel === undefined) {
      await drain(entry);
      return;
    }
    const target = path.join(root, ...rel.split('/'));
    // With `checkOnly` another process writes: every check and report below still runs.
    const write = !options.checkOnly;
    if (h.type !== 'directory') {
      if (seen.has(rel)) throw refused(subject, h.name, 'appears twice in the archive');
      seen.add(rel);
    }
    switch (h.type) {
      case 'directory':
        await drain(entry);
        if (write) {
          mkdirSync(target, { recursive: true });
          insideRoot(path.dirname(target), rel);
        }
        break;
      case 'file':
      case 'contiguous-file': {
        if (write) directoryFor(target, rel);
        const mode = fileMode(h);
        try {
          // Small files in one write (most of a template); large ones streamed, so memory stays flat.
          if ((h.size ?? Number.POSITIVE_INFINITY) <= WHOLE_FILE_LIMIT) {
            const content = await collect(entry);
            // A synchronous write: most entries are small, and a thread-pool round trip each costs more than the write.
            if (write) writeFileSync(target, content, { flag: 'wx', mode });
            options.observer?.file(rel, mode, content.length, sha256Hex(content), content);
          } else {
            const hash = createHash('sha256');
            let size = 0;
            const tap = new Transform({
              transform(chunk: Buffer, _enc, done) {
                hash.update(chunk);
                size += chunk.length;
                done(null, write ? chunk : undefined);
              },
            });
            if (write) await pipeline(entry, tap, createWriteStream(target, { flags: 'wx', mode }));
            else await pipeline(entry, tap.resume());
            options.observer?.file(rel, mode, size, hash.digest('hex'), undefined);
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST')
            throw refused(subject, h.name, 'appears twice in the archive');
          throw err;
        }
        entries++;
        break;
      }
      case 'symlink': {
        await drain(entry);
        const why = unsafeLinkTarget(rel, h.linkname ?? '');
        if (why !== undefined) throw refused(subject, h.name, `is a symlink that ${why}`);
        if (write) {
          mkdirSync(path.dirname(target), { recursive: true });
          insideRoot(path.dirname(target), rel);
          try {
            symlinkSync(h.linkname ?? '', target);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EEXIST')
              throw refused(subject, h.name, 'appears twice in the archive');
            throw err;
          }
        }
        options.observer?.symlink(rel, h.linkname ?? '');
        entries++;
        break;
      }
      case 'link':
        throw refused(subject, h.name, `is a hard link (to ${h.linkname ?? '?'})`);
      case 'character-device':
      case 'block-device':
        throw refused(subject, h.name, 'is a device file');
      case 'fifo':
        throw refused(subject, h.name, 'is a fifo');
      default:
        throw refused(subject, h.name, `has an unsupported type (${h.type ?? 'unknown'})`);
    }
  }

  // tar-stream wants an entry's body consumed before the next entry is asked for.
  function drain(entry: Readable): Promise<void> {
    return new Promise((resolve, reject) => {
      entry.once('end', resolve).once('error', reject).resume();
    });
  }

  // The entry's path inside the template, or undefined for entries not staged (pax headers,
  // the wrapping directory, files outside `subdir`).
  async function place(name: string, isDirectory: boolean): Promise<string | undefined> {
    const why = unsafeEntryName(name);
    if (why !== undefined) throw refused(subject, name, why);
    const segments = name
      .replace(/^(\.\/)+/, '')
      .split('/')
      .filter((s) => s !== '' && s !== '.');
    if (segments.length === 0) return undefined;
    if (strip > 0) {
      const head = segments.slice(0, strip).join('/');
      if (top === undefined) top = head;
      else if (head !== top)
        throw refused(subject, name, `is outside the archive's single top-level directory "${top}"`);
      segments.splice(0, strip);
      if (segments.length === 0) return undefined;
    }
    let rel = segments.join('/');
    if (subdir !== '') {
      if (rel === subdir) {
        if (isDirectory) subdirFound = true;
        return undefined;
      }
      if (!rel.startsWith(`${subdir}/`)) return undefined;
      rel = rel.slice(subdir.length + 1);
    }
    return rel;
  }

  // A file's directory, created and checked once: entries never replace what exists (O_EXCL,
  // EEXIST on symlinks), so a directory found inside the root stays inside it.
  function directoryFor(target: string, rel: string): void {
    const dir = path.dirname(target);
    if (checkedDirs.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    insideRoot(dir, rel);
    checkedDirs.add(dir);
  }

  function collect(entry: Readable): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      entry
        .on('data', (c: Buffer) => chunks.push(c))
        .once('end', () => resolve(Buffer.concat(chunks)))
        .once('error', reject);
    });
  }

  // A directory reached through an earlier symlink must still resolve inside the root.
  function insideRoot(dir: string, rel: string): void {
    const real = realpathSync.native(dir);
    if (real !== root && !real.startsWith(`${root}${path.sep}`))
      throw refused(subject, rel, 'would be written through a symlink that leads outside the template');
  }
}
