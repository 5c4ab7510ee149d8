import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Header, type HeaderData } from 'tar/header';
import { Pax } from 'tar/pax';
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
function fileMode(mode: number | undefined): number {
  return ((mode ?? 0o644) & 0o100) !== 0 ? 0o755 : 0o644;
}

/** What a failed unpack throws: a refusal as it is, else an interruption or a damaged archive. */
function unpackFailure(err: unknown, options: ExtractOptions): SlipwayError {
  const { subject } = options;
  if (isSlipwayError(err)) return err;
  if (options.signal?.aborted) {
    return new SlipwayError('INTERRUPTED', `template "${subject}": staging was interrupted`, {
      resource: subject,
    });
  }
  return new SlipwayError(
    'SOURCE_FETCH_FAILED',
    `template "${subject}": could not unpack the archive: ${messageOf(err)}`,
    {
      resource: subject,
      hint: 'the archive is damaged or truncated; stage again, or check the source',
    },
  );
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
 * The refusals every archive entry goes through, and what the archive held so far: one set of
 * rules whether Slipway writes the files or only checks what another process writes.
 */
class EntryRules {
  /** With `strip`: the single top-level directory every entry must be under. */
  private top: string | undefined;
  /** Files and symlinks seen: a second entry of the same name is refused, also when another process writes. */
  private readonly seen = new Set<string>();
  /** With `subdir`: whether the archive held that directory itself. */
  subdirFound: boolean;

  constructor(
    private readonly subject: string,
    private readonly strip: number,
    private readonly subdir: string,
  ) {
    this.subdirFound = subdir === '';
  }

  /**
   * The entry's path inside the template, or undefined for entries not staged (the wrapping
   * directory, files outside `subdir`); refuses a name that could escape the template.
   */
  place(name: string, isDirectory: boolean): string | undefined {
    const why = unsafeEntryName(name);
    if (why !== undefined) throw refused(this.subject, name, why);
    const segments = name
      .replace(/^(\.\/)+/, '')
      .split('/')
      .filter((s) => s !== '' && s !== '.');
    if (segments.length === 0) return undefined;
    if (this.strip > 0) {
      const head = segments.slice(0, this.strip).join('/');
      if (this.top === undefined) this.top = head;
      else if (head !== this.top)
        throw refused(
          this.subject,
          name,
          `is outside the archive's single top-level directory "${this.top}"`,
        );
      segments.splice(0, this.strip);
      if (segments.length === 0) return undefined;
    }
    let rel = segments.join('/');
    if (this.subdir !== '') {
      if (rel === this.subdir) {
        if (isDirectory) this.subdirFound = true;
        return undefined;
      }
      if (!rel.startsWith(`${this.subdir}/`)) return undefined;
      rel = rel.slice(this.subdir.length + 1);
    }
    return rel;
  }

  /** Refuses a second file or symlink of the same name. */
  claim(rel: string, name: string): void {
    if (this.seen.has(rel)) throw refused(this.subject, name, 'appears twice in the archive');
    this.seen.add(rel);
  }

  /** Refuses a symlink whose target leads outside the template. */
  symlink(rel: string, name: string, target: string): void {
    const why = unsafeLinkTarget(rel, target);
    if (why !== undefined) throw refused(this.subject, name, `is a symlink that ${why}`);
  }

  /** The refusal of an entry that is not a file, directory or symlink (`type` in tar-stream's names). */
  unsupported(type: string, name: string, linkname: string | undefined): SlipwayError {
    switch (type) {
      case 'link':
        return refused(this.subject, name, `is a hard link (to ${linkname || '?'})`);
      case 'character-device':
      case 'block-device':
        return refused(this.subject, name, 'is a device file');
      case 'fifo':
        return refused(this.subject, name, 'is a fifo');
      default:
        return refused(this.subject, name, `has an unsupported type (${type})`);
    }
  }
}

/** tar-stream's names for node-tar's entry types, so a refusal reads the same on both paths. */
const TYPE_NAMES: Readonly<Record<string, string>> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'contiguous-file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'link',
  CharacterDevice: 'character-device',
  BlockDevice: 'block-device',
  FIFO: 'fifo',
};

/** Extended-header bodies larger than this are refused (node-tar's own limit): they are names, not data. */
const MAX_META_BYTES = 1024 * 1024;

/** The body being read: an extension record, a file, or bytes passed over. */
type Body =
  | { kind: 'meta'; type: string; size: number; remaining: number; parts: Buffer[] }
  | {
      kind: 'file';
      rel: string;
      mode: number;
      size: number;
      remaining: number;
      parts: Buffer[] | undefined;
      hash: Hash | undefined;
    }
  | { kind: 'skip'; size: number; remaining: number };

/**
 * A tar read as its bytes arrive, without a stream per entry: headers are decoded by node-tar's
 * `Header` and `Pax` (ustar, GNU long names, pax records), bodies hashed from the chunks in hand
 * (a file up to 1 MiB is passed whole, usually a view of one chunk). Every entry goes through the
 * same {@link EntryRules} as a written one and is reported to the observer the same way. Reading
 * stops at the first zero block, as GNU tar's does.
 */
class TarCheck {
  entries = 0;
  private readonly block = Buffer.alloc(512);
  private blockFill = 0;
  private ex: HeaderData | undefined;
  private gex: HeaderData | undefined;
  private body: Body | undefined;
  private padding = 0;
  private ended = false;

  constructor(
    private readonly rules: EntryRules,
    private readonly observer: ExtractObserver | undefined,
  ) {}

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - at);
        this.padding -= n;
        at += n;
      } else if (this.body) {
        at = this.readBody(this.body, chunk, at);
      } else if (this.blockFill === 0 && chunk.length - at >= 512) {
        this.header(chunk.subarray(at, at + 512));
        at += 512;
      } else {
        const n = Math.min(512 - this.blockFill, chunk.length - at);
        chunk.copy(this.block, this.blockFill, at, at + n);
        this.blockFill += n;
        at += n;
        if (this.blockFill === 512) {
          this.blockFill = 0;
          this.header(this.block);
        }
      }
    }
  }

  /** The input ended: anything but an entry boundary is a truncated archive. */
  end(): void {
    if (!this.ended && (this.body || this.blockFill > 0 || this.padding > 0))
      throw new Error('Unexpected end of data');
  }

  private header(block: Buffer): void {
    const h = new Header(block, 0, this.ex, this.gex);
    if (h.nullBlock) {
      this.ended = true;
      return;
    }
    if (!h.cksumValid)
      throw new Error('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');
    const size = h.size ?? 0;
    const kind = h.type as string;
    if (
      kind === 'ExtendedHeader' ||
      kind === 'GlobalExtendedHeader' ||
      kind === 'NextFileHasLongPath' ||
      kind === 'NextFileHasLongLinkpath'
    ) {
      if (size > MAX_META_BYTES) throw new Error(`an extended header of ${size} bytes`);
      this.begin({ kind: 'meta', type: kind, size, remaining: size, parts: [] });
      return;
    }
    // A pending pax record or GNU long name names this entry (Header applied its size and mode),
    // and ends with it.
    const name = this.ex?.path ?? h.path ?? '';
    const linkname = this.ex?.linkpath ?? h.linkpath ?? '';
    this.ex = undefined;
    const type = TYPE_NAMES[kind] ?? kind;
    const rel = this.rules.place(name, type === 'directory');
    if (rel !== undefined && type !== 'directory') this.rules.claim(rel, name);
    if (rel === undefined || type === 'directory') {
      this.begin({ kind: 'skip', size, remaining: size });
    } else if (type === 'file' || type === 'contiguous-file') {
      const whole = size <= WHOLE_FILE_LIMIT;
      this.begin({
        kind: 'file',
        rel,
        mode: fileMode(h.mode),
        size,
        remaining: size,
        parts: whole ? [] : undefined,
        hash: whole ? undefined : createHash('sha256'),
      });
    } else if (type === 'symlink') {
      this.rules.symlink(rel, name, linkname);
      this.observer?.symlink(rel, linkname);
      this.entries++;
      this.begin({ kind: 'skip', size, remaining: size });
    } else {
      throw this.rules.unsupported(type, name, linkname);
    }
  }

  private begin(body: Body): void {
    this.body = body;
    if (body.remaining === 0) this.finish(body);
  }

  private readBody(body: Body, chunk: Buffer, at: number): number {
    const n = Math.min(body.remaining, chunk.length - at);
    if (body.kind === 'skip') {
      // Nothing kept.
    } else if (body.kind === 'file' && body.hash) {
      body.hash.update(chunk.subarray(at, at + n));
    } else {
      body.parts?.push(chunk.subarray(at, at + n));
    }
    body.remaining -= n;
    if (body.remaining === 0) this.finish(body);
    return at + n;
  }

  private finish(body: Body): void {
    this.body = undefined;
    this.padding = (512 - (body.size % 512)) % 512;
    if (body.kind === 'skip') return;
    if (body.kind === 'file') {
      if (body.hash) {
        this.observer?.file(body.rel, body.mode, body.size, body.hash.digest('hex'), undefined);
      } else {
        const parts = body.parts ?? [];
        const content = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, body.size);
        this.observer?.file(body.rel, body.mode, body.size, sha256Hex(content), content);
      }
      this.entries++;
      return;
    }
    const text = Buffer.concat(body.parts, body.size).toString('utf8');
    if (body.type === 'ExtendedHeader') this.ex = Pax.parse(text, this.ex, false);
    else if (body.type === 'GlobalExtendedHeader') this.gex = applying(Pax.parse(text, this.gex, true));
    else if (body.type === 'NextFileHasLongPath') this.ex = { ...this.ex, path: text.replace(/\0.*/s, '') };
    else this.ex = { ...this.ex, linkpath: text.replace(/\0.*/s, '') };
  }
}

/**
 * The records of a global pax header that change the entries after it, or undefined when there
 * are none: `git archive` writes one holding only a comment (the commit id), and applying an
 * empty set to every header costs more than reading it.
 */
function applying(global: Pax): HeaderData | undefined {
  const kept = Object.entries(global).filter(
    ([key, value]) => value !== undefined && key !== 'global' && key !== 'comment',
  );
  return kept.length > 0 ? (Object.fromEntries(kept) as HeaderData) : undefined;
}

/** {@link extractTar} with `checkOnly`: every entry checked and reported, nothing written. */
async function checkTar(input: Readable, rules: EntryRules, options: ExtractOptions): Promise<ExtractResult> {
  const check = new TarCheck(rules, options.observer);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        check.write(chunk);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    final(done) {
      try {
        check.end();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
  try {
    await pipeline([input, ...(options.gzip ? [createGunzip()] : []), sink], {
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    input.destroy();
    throw unpackFailure(err, options);
  }
  options.observer?.end();
  return { entries: check.entries, subdirFound: rules.subdirFound };
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
  const rules = new EntryRules(subject, strip, subdir);
  if (options.checkOnly) {
    // Another process writes into `dest`: the archive is only read here, entry by entry as bytes arrive.
    mkdirSync(dest, { recursive: true });
    return checkTar(input, rules, options);
  }
  const rootReady = mkdir(dest, { recursive: true }).then(() => realpath(dest));
  rootReady.catch(() => {});
  let root = '';
  const extract = tar.extract();
  let entries = 0;
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
    throw unpackFailure(err, options);
  }
  options.observer?.end();
  return { entries, subdirFound: rules.subdirFound };

  async function handle(h: tar.Header, entry: Readable): Promise<void> {
    root = await rootReady;
    // git archive writes the commit id in a pax global header; it is metadata, not a file.
    const type: string = h.type ?? 'file';
    if (type === 'pax-global-header' || type === 'pax-header') {
      await drain(entry);
      return;
    }
    const rel = rules.place(h.name, h.type === 'directory');
    if (rel === undefined) {
      await drain(entry);
      return;
    }
    const target = path.join(root, ...rel.split('/'));
    if (h.type !== 'directory') rules.claim(rel, h.name);
    switch (h.type) {
      case 'directory':
        await drain(entry);
        mkdirSync(target, { recursive: true });
        insideRoot(path.dirname(target), rel);
        break;
      case 'file':
      case 'contiguous-file': {
        directoryFor(target, rel);
        const mode = fileMode(h.mode);
        try {
          // Small files in one write (most of a template); large ones streamed, so memory stays flat.
          if ((h.size ?? Number.POSITIVE_INFINITY) <= WHOLE_FILE_LIMIT) {
            const content = await collect(entry);
            // A synchronous write: most entries are small, and a thread-pool round trip each costs more than the write.
            writeFileSync(target, content, { flag: 'wx', mode });
            options.observer?.file(rel, mode, content.length, sha256Hex(content), content);
          } else {
            const hash = createHash('sha256');
            let size = 0;
            const tap = new Transform({
              transform(chunk: Buffer, _enc, done) {
                hash.update(chunk);
                size += chunk.length;
                done(null, chunk);
              },
            });
            await pipeline(entry, tap, createWriteStream(target, { flags: 'wx', mode }));
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
        rules.symlink(rel, h.name, h.linkname ?? '');
        mkdirSync(path.dirname(target), { recursive: true });
        insideRoot(path.dirname(target), rel);
        try {
          symlinkSync(h.linkname ?? '', target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST')
            throw refused(subject, h.name, 'appears twice in the archive');
          throw err;
        }
        options.observer?.symlink(rel, h.linkname ?? '');
        entries++;
        break;
      }
      default:
        throw rules.unsupported(h.type ?? 'unknown', h.name, h.linkname);
    }
  }

  // tar-stream wants an entry's body consumed before the next entry is asked for.
  function drain(entry: Readable): Promise<void> {
    return new Promise((resolve, reject) => {
      entry.once('end', resolve).once('error', reject).resume();
    });
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
