import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { messageOf, SlipwayError } from '../core/errors.js';
import type { PinChange, PinHistoryEntry, PinRecord, PinStore, SmokeRecord } from './pin-store.js';
import { pinConflict } from './pin-store-errors.js';

/**
 * The `file:PATH` pin store: one pretty-printed JSON document with a stable key order, so a
 * GitOps repository can review pin moves as diffs. Writes go through a temp file, fsync and
 * rename (write-file-atomic), so a reader or a crash never sees half a document; changes hold a
 * cross-process lock (proper-lockfile, `PATH.lock`) so compare-and-set holds across processes.
 */

/** Options for the file pin store. */
export interface FilePinStoreOptions {
  /** Base directory a relative PATH resolves against (default: the process's working directory). */
  readonly cwd?: string;
  /** How long a change waits for another writer's lock before STORE_ERROR (default 15 s). */
  readonly lockWaitMs?: number;
  /** After how long a lock whose holder died counts as stale (default 5 s, minimum 2 s). */
  readonly lockStaleMs?: number;
}

const PinSchema = z.strictObject({
  runtime: z.string(),
  image: z.string(),
  digest: z.string(),
  tag: z.string().nullable(),
  updatedAt: z.string(),
  updatedBy: z.string(),
  reason: z.string().nullable(),
});

const HistorySchema = z.strictObject({
  id: z.number().int().positive(),
  runtime: z.string(),
  fromDigest: z.string().nullable(),
  toDigest: z.string(),
  image: z.string(),
  tag: z.string().nullable(),
  at: z.string(),
  by: z.string(),
  reason: z.string().nullable(),
  forced: z.boolean(),
  kind: z.enum(['promote', 'rollback']),
});

const SmokeSchema = z.strictObject({
  repository: z.string(),
  digest: z.string(),
  specDigest: z.string(),
  passed: z.boolean(),
  at: z.string(),
  by: z.string(),
  summary: z.string(),
});

/** The pin file's format, version 1. */
export const PinFileSchema = z.strictObject({
  version: z.literal(1),
  pins: z.record(z.string(), PinSchema),
  history: z.array(HistorySchema),
  smokeRecords: z.array(SmokeSchema),
});

/** The parsed pin file. */
export type PinFile = z.output<typeof PinFileSchema>;

/** The path a `file:` URL names: `file:rel/path`, `file:/abs/path` or `file:///abs/path`. */
export function pinFilePath(url: string, cwd?: string): string {
  if (!url.startsWith('file:')) throw new SlipwayError('USAGE', `not a file: pin store URL: ${url}`);
  const p = url.startsWith('file://') ? fileURLToPath(url) : url.slice('file:'.length);
  if (p === '') {
    throw new SlipwayError('USAGE', 'the file: pin store URL names no file', {
      hint: 'use file:PATH, e.g. file:.slipway/pins.json',
    });
  }
  return path.resolve(cwd ?? '.', p);
}

// Explicit key order: JSON.stringify keeps insertion order, so the file diffs line by line.
function pinOut(p: PinRecord): PinRecord {
  return {
    runtime: p.runtime,
    image: p.image,
    digest: p.digest,
    tag: p.tag,
    updatedAt: p.updatedAt,
    updatedBy: p.updatedBy,
    reason: p.reason,
  };
}

function historyOut(h: PinHistoryEntry): PinHistoryEntry {
  return {
    id: h.id,
    runtime: h.runtime,
    fromDigest: h.fromDigest,
    toDigest: h.toDigest,
    image: h.image,
    tag: h.tag,
    at: h.at,
    by: h.by,
    reason: h.reason,
    forced: h.forced,
    kind: h.kind,
  };
}

function smokeOut(s: SmokeRecord): SmokeRecord {
  return {
    repository: s.repository,
    digest: s.digest,
    specDigest: s.specDigest,
    passed: s.passed,
    at: s.at,
    by: s.by,
    summary: s.summary,
  };
}

/** Serialises a pin file: 2-space JSON, pins sorted by runtime, history in id order, trailing newline. */
export function serializePinFile(doc: PinFile): string {
  const pins: Record<string, PinRecord> = {};
  for (const runtime of Object.keys(doc.pins).sort()) {
    const pin = doc.pins[runtime];
    if (pin) pins[runtime] = pinOut(pin);
  }
  const out = {
    version: 1,
    pins,
    history: [...doc.history].sort((a, b) => a.id - b.id).map(historyOut),
    smokeRecords: doc.smokeRecords.map(smokeOut),
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** The `file:PATH` pin store. */
export class FilePinStore implements PinStore {
  readonly description: string;
  /** Absolute path of the pin file. */
  readonly file: string;

  constructor(
    url: string,
    private readonly options: FilePinStoreOptions = {},
  ) {
    this.file = pinFilePath(url, options.cwd);
    this.description = `file:${this.file}`;
  }

  /** Reads and validates the document; a missing file is an empty store, a corrupt one an error. */
  async read(): Promise<PinFile> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { version: 1, pins: {}, history: [], smokeRecords: [] };
      throw new SlipwayError('STORE_ERROR', `cannot read pin file ${this.file}: ${messageOf(err)}`, {
        resource: this.file,
      });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw this.corrupt(`not valid JSON (${messageOf(err)})`);
    }
    const parsed = PinFileSchema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      throw this.corrupt(
        first
          ? `${first.path.join('.') || '(root)'}: ${first.message}`
          : 'does not match the pin file format',
      );
    }
    return parsed.data;
  }

  private corrupt(problem: string): SlipwayError {
    return new SlipwayError('STORE_ERROR', `pin file ${this.file} is corrupt: ${problem}`, {
      resource: this.file,
      // Resetting would silently forget which image every runtime boots.
      hint: 'restore it from version control or a backup; Slipway never resets a pin file it cannot read',
    });
  }

  /** Runs `change` on the document under the cross-process lock and writes the result atomically. */
  private async update<T>(what: string, change: (doc: PinFile) => T): Promise<T> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const stale = Math.max(2000, this.options.lockStaleMs ?? 5000);
    const wait = this.options.lockWaitMs ?? 15_000;
    let compromised: Error | undefined;
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.file, {
        realpath: false,
        stale,
        retries: {
          retries: Math.max(1, Math.ceil(wait / 100)),
          minTimeout: 20,
          maxTimeout: 200,
          factor: 1.3,
        },
        onCompromised: (err) => {
          compromised = err;
        },
      });
    } catch (err) {
      throw new SlipwayError('STORE_ERROR', `${what}: cannot lock pin file ${this.file}: ${messageOf(err)}`, {
        resource: this.file,
        hint: `another slipway process holds ${this.file}.lock; retry, or remove the lock if no process is running`,
      });
    }
    try {
      const doc = await this.read();
      const result = change(doc);
      // A lock lost while we worked (e.g. the process stalled past `stale`) means another
      // writer may have read the old document: writing now could overwrite its change.
      if (compromised) {
        throw new SlipwayError(
          'STORE_ERROR',
          `${what}: lost the lock on ${this.file} (${compromised.message})`,
          {
            resource: this.file,
            hint: 'nothing was written; retry',
          },
        );
      }
      try {
        await writeFileAtomic(this.file, serializePinFile(doc), { fsync: true });
      } catch (err) {
        throw new SlipwayError(
          'STORE_ERROR',
          `${what}: cannot write pin file ${this.file}: ${messageOf(err)}`,
          {
            resource: this.file,
          },
        );
      }
      return result;
    } finally {
      await release().catch(() => {});
    }
  }

  async getPin(runtime: string): Promise<PinRecord | null> {
    return (await this.read()).pins[runtime] ?? null;
  }

  async listPins(): Promise<PinRecord[]> {
    const doc = await this.read();
    return Object.keys(doc.pins)
      .sort()
      .flatMap((r) => (doc.pins[r] ? [doc.pins[r]] : []));
  }

  compareAndSet(expectedDigest: string | null, change: PinChange): Promise<PinRecord> {
    return this.update(`moving the pin of ${change.runtime}`, (doc) => {
      const current = doc.pins[change.runtime] ?? null;
      const actual = current ? current.digest : null;
      if (actual !== expectedDigest)
        throw pinConflict(change.runtime, expectedDigest, actual, this.description);
      const at = new Date().toISOString();
      const pin: PinRecord = {
        runtime: change.runtime,
        image: change.image,
        digest: change.digest,
        tag: change.tag,
        updatedAt: at,
        updatedBy: change.by,
        reason: change.reason,
      };
      doc.pins[change.runtime] = pin;
      doc.history.push({
        id: doc.history.reduce((max, h) => Math.max(max, h.id), 0) + 1,
        runtime: change.runtime,
        fromDigest: expectedDigest,
        toDigest: change.digest,
        image: change.image,
        tag: change.tag,
        at,
        by: change.by,
        reason: change.reason,
        forced: change.forced,
        kind: change.kind,
      });
      return pin;
    });
  }

  async history(runtime: string): Promise<PinHistoryEntry[]> {
    const doc = await this.read();
    return doc.history.filter((h) => h.runtime === runtime).sort((a, b) => b.id - a.id);
  }

  async recordSmoke(record: SmokeRecord): Promise<void> {
    await this.update(`recording the smoke result of ${record.digest}`, (doc) => {
      doc.smokeRecords.push(smokeOut(record));
    });
  }

  async smokeRecords(digest: string): Promise<SmokeRecord[]> {
    const doc = await this.read();
    // Appended in time order: newest first is the reverse (stable for equal timestamps).
    return doc.smokeRecords.filter((s) => s.digest === digest).reverse();
  }

  async close(): Promise<void> {}
}
