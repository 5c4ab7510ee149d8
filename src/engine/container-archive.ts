import { createHash } from 'node:crypto';
import { extract } from 'tar-stream';

/**
 * Decoding what the engine sends back from a container: the tar of `GET /containers/{id}/archive`,
 * the `X-Docker-Container-Path-Stat` header of `HEAD`, and the multiplexed log/exec stream.
 */

/** One entry of a container directory's tar, relative to that directory. */
export interface ArchiveEntry {
  /** POSIX path relative to the archived directory (no leading `./`, no trailing `/`). */
  readonly path: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'other';
  /** Permission bits from the tar header. */
  readonly mode: number;
  readonly size: number;
  /** sha256 hex of the content (files) or the link target (symlinks); null otherwise. */
  readonly sha256: string | null;
  readonly linkTarget: string | null;
}

/**
 * Reads a tar as the engine returns it for `GET /containers/{id}/archive?path=P`: every name
 * starts with the basename of P, which is stripped so paths are relative to P itself (the same
 * frame staging hashes the staged directory in). Hard links become copies of their target.
 */
export async function readArchive(tar: NodeJS.ReadableStream): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  const byName = new Map<string, ArchiveEntry>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const hash = createHash('sha256');
      stream.on('data', (c: unknown) => {
        hash.update(c as Buffer);
      });
      stream.on('end', () => {
        const name = header.name.replace(/^\.\//, '').replace(/\/+$/, '');
        const slash = name.indexOf('/');
        const rel = slash < 0 ? '' : name.slice(slash + 1);
        const mode = (header.mode ?? 0) & 0o7777;
        let entry: ArchiveEntry;
        switch (header.type) {
          case 'file':
          case 'contiguous-file':
            entry = {
              path: rel,
              type: 'file',
              mode,
              size: header.size ?? 0,
              sha256: hash.digest('hex'),
              linkTarget: null,
            };
            break;
          case 'symlink':
            entry = {
              path: rel,
              type: 'symlink',
              mode,
              size: 0,
              sha256: createHash('sha256')
                .update(header.linkname ?? '')
                .digest('hex'),
              linkTarget: header.linkname ?? '',
            };
            break;
          case 'link': {
            // The engine writes a second name of the same inode as a hard link to the first;
            // on disk (where staging hashed it) it is an ordinary file with that content.
            const target = byName.get((header.linkname ?? '').replace(/^\.\//, ''));
            entry = {
              path: rel,
              type: target?.type === 'file' ? 'file' : 'other',
              mode,
              size: target?.size ?? 0,
              sha256: target?.sha256 ?? null,
              linkTarget: null,
            };
            break;
          }
          case 'directory':
            entry = { path: rel, type: 'directory', mode, size: 0, sha256: null, linkTarget: null };
            break;
          default:
            entry = { path: rel, type: 'other', mode, size: 0, sha256: null, linkTarget: null };
        }
        byName.set(name, entry);
        if (rel !== '') entries.push(entry);
        next();
      });
      stream.on('error', reject);
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  (tar as NodeJS.ReadableStream).pipe(ex);
  await done;
  return entries;
}

/** The stat the engine reports for a container path (`X-Docker-Container-Path-Stat`), decoded. */
export interface PathStat {
  readonly name: string;
  readonly size: number;
  readonly type: 'file' | 'directory' | 'symlink' | 'other';
  /** Unix permission bits incl. setuid/setgid/sticky. */
  readonly mode: number;
  readonly linkTarget: string;
}

// Go's os.FileMode bits (bit numbers), which the engine serialises as-is.
const GO_DIR = 31;
const GO_SYMLINK = 27;
/** ModeDevice, ModeNamedPipe, ModeSocket, ModeCharDevice, ModeIrregular. */
const GO_OTHER_TYPES = [26, 25, 24, 21, 19];
const GO_SETUID = 23;
const GO_SETGID = 22;
const GO_STICKY = 20;

/** Decodes the base64 JSON of the `X-Docker-Container-Path-Stat` header. */
export function decodePathStat(header: string): PathStat {
  const raw = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as {
    name: string;
    size: number;
    mode: number;
    linkTarget?: string;
  };
  // The mode exceeds 2^31, so bits are read with arithmetic: JS bitwise operators are 32-bit signed.
  const m = raw.mode;
  const bit = (n: number) => Math.floor(m / 2 ** n) % 2 === 1;
  let type: PathStat['type'] = 'file';
  if (bit(GO_DIR)) type = 'directory';
  else if (bit(GO_SYMLINK)) type = 'symlink';
  else if (GO_OTHER_TYPES.some(bit)) type = 'other';
  const mode =
    (m % 0o1000) +
    (bit(GO_SETUID) ? 0o4000 : 0) +
    (bit(GO_SETGID) ? 0o2000 : 0) +
    (bit(GO_STICKY) ? 0o1000 : 0);
  return { name: raw.name, size: raw.size, type, mode, linkTarget: raw.linkTarget ?? '' };
}

/**
 * Splits a non-TTY container log or exec stream (the engine's 8-byte-header multiplexing:
 * stream type, 3 zero bytes, big-endian length) into text. A buffer that is not multiplexed
 * (TTY containers) is returned as-is.
 */
export function demuxDockerStream(buf: Buffer): { stdout: string; stderr: string; all: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const kind = buf[i];
    if (
      (kind !== 0 && kind !== 1 && kind !== 2) ||
      buf[i + 1] !== 0 ||
      buf[i + 2] !== 0 ||
      buf[i + 3] !== 0
    ) {
      const s = buf.toString('utf8');
      return { stdout: s, stderr: '', all: s };
    }
    const len = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + len);
    (kind === 2 ? err : out).push(chunk);
    all.push(chunk);
    i += 8 + len;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    all: Buffer.concat(all).toString('utf8'),
  };
}
