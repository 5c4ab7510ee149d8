import { closeSync, openSync, readlinkSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * The deterministic tar of a build context, produced on demand: each `_read` reads files with
 * synchronous calls until the stream's buffer is full (about {@link HIGH_WATER_MARK}), then
 * returns to the event loop. No per-file promise or thread-pool round trip (a 20,000-file
 * context costs 60,000 syscalls, not 60,000 callbacks); memory is the buffer plus one chunk.
 *
 * The bytes are those tar-stream's `pack()` writes for the same headers (ustar, a PAX record
 * only for a name or link target ustar cannot hold); a unit test holds the two equal.
 */

/** One member of the tar, in the order written. */
export interface TarMember {
  readonly name: string;
  readonly type: 'file' | 'symlink' | 'directory';
  readonly mode: number;
  /** Files: bytes to send (checked against the file when it is read). */
  readonly size: number;
  /** Files and symlinks on disk; absent when `content` is given. */
  readonly abs?: string;
  /** In-memory content (a Dockerfile from outside the context). */
  readonly content?: Buffer;
}

/** Common header fields: owner 0:0, no names, a fixed mtime (seconds since the epoch). */
export interface TarDefaults {
  readonly mtimeSeconds: number;
}

const HIGH_WATER_MARK = 1024 * 1024;
/** Headers and small files are gathered into chunks of about this size: fewer, larger writes. */
const BATCH = 256 * 1024;
/** Larger files are read in chunks of this size over several `_read` calls. */
const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(1024);
const TYPEFLAG = { file: 0, symlink: 2, directory: 5, 'pax-header': 72 } as const;

function octal(value: number, width: number): string {
  const s = value.toString(8);
  if (s.length > width) return `${'7'.repeat(width)} `;
  return `${'0'.repeat(width - s.length)}${s} `;
}

function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < 512; i++) sum += block[i] as number;
  return sum;
}

interface RawHeader {
  name: string;
  type: keyof typeof TYPEFLAG;
  mode: number;
  size: number;
  mtimeSeconds: number;
  linkname?: string | undefined;
}

/** A ustar header block, or null when the name or link needs a PAX record (tar-stream's rules). */
function ustar(h: RawHeader): Buffer | null {
  // tar-stream writes directory names without a trailing slash; so does this, byte for byte.
  let name = h.name;
  let prefix = '';
  if (Buffer.byteLength(name) !== name.length) return null;
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return null;
  if (h.linkname && Buffer.byteLength(h.linkname) > 100) return null;
  const buf = Buffer.alloc(512);
  buf.write(name, 0);
  buf.write(octal(h.mode & 0o7777, 6), 100);
  buf.write(octal(0, 6), 108);
  buf.write(octal(0, 6), 116);
  if (h.size.toString(8).length > 11) {
    buf[124] = 0x80;
    let n = h.size;
    for (let i = 11; i > 0; i--) {
      buf[124 + i] = n & 0xff;
      n = Math.floor(n / 0x100);
    }
  } else {
    buf.write(octal(h.size, 11), 124);
  }
  buf.write(octal(h.mtimeSeconds, 11), 136);
  buf[156] = 0x30 + TYPEFLAG[h.type];
  if (h.linkname) buf.write(h.linkname, 157);
  buf.write('ustar\u000000', 257, 'latin1');
  buf.write(octal(0, 6), 329);
  buf.write(octal(0, 6), 337);
  if (prefix) buf.write(prefix, 345);
  buf.write(octal(checksum(buf), 6), 148);
  return buf;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(body);
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${body}`;
}

function padding(size: number): Buffer | null {
  const rest = size & 511;
  return rest ? ZEROS.subarray(0, 512 - rest) : null;
}

/** The header block(s) of a member: ustar, or a PAX header, its record and a ustar header. */
export function tarHeader(h: RawHeader): Buffer[] {
  const plain = ustar(h);
  if (plain) return [plain];
  const pax = Buffer.from(
    `${h.name ? paxRecord('path', h.name) : ''}${h.linkname ? paxRecord('linkpath', h.linkname) : ''}`,
  );
  const paxHeader = ustar({
    ...h,
    name: 'PaxHeader',
    type: 'pax-header',
    size: pax.length,
    linkname: h.linkname ? 'PaxHeader' : undefined,
  }) as Buffer;
  const real = ustar({ ...h, name: 'PaxHeader', linkname: h.linkname ? 'PaxHeader' : undefined }) as Buffer;
  const pad = padding(pax.length);
  return pad ? [paxHeader, pax, pad, real] : [paxHeader, pax, real];
}

/** A file whose size changed between listing and packing: the tar would be corrupt. */
function changedSize(name: string): Error {
  return new Error(`${name} changed size while it was packed`);
}

/** The tar stream of `members` (see the file comment). */
export class ContextTar extends Readable {
  private index = 0;
  /** A large file being streamed: its descriptor and the bytes still to send. */
  private open: { fd: number; left: number; member: TarMember } | undefined;
  private ended = false;
  private batch: Buffer[] = [];
  private batchBytes = 0;

  constructor(
    private readonly members: readonly TarMember[],
    private readonly defaults: TarDefaults,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
  }

  override _read(): void {
    try {
      let more = true;
      while (more && !this.ended) more = this.step();
    } catch (err) {
      this.closeOpen();
      this.destroy(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.closeOpen();
    cb(err);
  }

  /** Pushes the next piece; false when the buffer is full (or the tar is complete). */
  private step(): boolean {
    if (this.open) return this.continueFile(this.open);
    const m = this.members[this.index++];
    if (!m) {
      this.ended = true;
      this.pushAll([ZEROS]);
      this.flush();
      this.push(null);
      return false;
    }
    const base = { name: m.name, type: m.type, mode: m.mode, mtimeSeconds: this.defaults.mtimeSeconds };
    if (m.type === 'directory') return this.pushAll(tarHeader({ ...base, size: 0 }));
    if (m.type === 'symlink') {
      const linkname = readlinkSync(m.abs as string);
      return this.pushAll(tarHeader({ ...base, size: 0, linkname }));
    }
    const headers = tarHeader({ ...base, size: m.size });
    if (m.content) return this.pushAll([...headers, m.content, ...optional(padding(m.size))]);
    const fd = openSync(m.abs as string, 'r');
    if (m.size > CHUNK) {
      this.open = { fd, left: m.size, member: m };
      return this.pushAll(headers);
    }
    let data: Buffer;
    try {
      // One byte more than expected: a file that grew is caught by the same read.
      data = Buffer.allocUnsafe(m.size + 1);
      const n = readFull(fd, data);
      if (n !== m.size) throw changedSize(m.name);
    } finally {
      closeSync(fd);
    }
    return this.pushAll([...headers, data.subarray(0, m.size), ...optional(padding(m.size))]);
  }

  private continueFile(open: { fd: number; left: number; member: TarMember }): boolean {
    const want = Math.min(CHUNK, open.left);
    const data = Buffer.allocUnsafe(want);
    const n = readFull(open.fd, data);
    if (n !== want) throw changedSize(open.member.name);
    open.left -= n;
    if (open.left > 0) return this.flush() && this.push(data);
    // The whole size is sent: one more byte would mean the file grew.
    const extra = readSync(open.fd, Buffer.allocUnsafe(1), 0, 1, null);
    this.closeOpen();
    if (extra !== 0) throw changedSize(open.member.name);
    return this.pushAll([data, ...optional(padding(open.member.size))]);
  }

  /** Adds parts to the batch; pushes it once it is large enough. False when the buffer is full. */
  private pushAll(parts: readonly Buffer[]): boolean {
    for (const p of parts) {
      this.batch.push(p);
      this.batchBytes += p.length;
    }
    return this.batchBytes >= BATCH ? this.flush() : true;
  }

  private flush(): boolean {
    if (this.batchBytes === 0) return true;
    const chunk =
      this.batch.length === 1 ? (this.batch[0] as Buffer) : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    return this.push(chunk);
  }

  private closeOpen(): void {
    if (!this.open) return;
    const { fd } = this.open;
    this.open = undefined;
    closeSync(fd);
  }
}

function optional(b: Buffer | null): Buffer[] {
  return b ? [b] : [];
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
