import type pg from 'pg';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import { Redactor } from '../core/redact.js';
import { DEFAULT_TIMEOUTS, isTimeout, type Timeouts } from '../core/timeouts.js';
import type { PinChange, PinHistoryEntry, PinRecord, PinStore, SmokeRecord } from './pin-store.js';
import { pinConflict } from './pin-store-errors.js';

/**
 * The PostgreSQL pin store: the control plane's `runtime_image_pins` table, its history and
 * smoke records. Every change is one transaction (pin update + history insert); compare-and-set
 * is a conditional `UPDATE … WHERE digest IS NOT DISTINCT FROM $expected` (or an
 * `INSERT … ON CONFLICT DO NOTHING` for a first pin) whose row count decides the winner.
 */

/** Options for the PostgreSQL pin store. */
export interface PostgresPinStoreOptions {
  /** A schema for the tables (created by migrate; sets `search_path`). Default: the role's search_path. */
  readonly schema?: string;
  /** How long a change waits for another promotion's row lock before PIN_CONFLICT (default 30 s). */
  readonly lockTimeoutMs?: number;
  /** How long to wait for a connection (default `timeouts.requestMs`). */
  readonly connectTimeoutMs?: number;
  /** Limits: connecting (request), each statement and an idle open transaction (operation). */
  readonly timeouts?: Timeouts;
  /** Testing only: called inside a change's transaction, after the writes and before COMMIT. */
  readonly testHooks?: { beforeCommit?: (info: { backendPid: number }) => Promise<void> };
}

/** One versioned migration. */
interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The migrations, in order. Never edit one that shipped: append a new version. */
export const PIN_STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'runtime_image_pins and history',
    // The control plane may already own runtime_image_pins (runtime, image): add what is missing.
    sql: `
      CREATE TABLE IF NOT EXISTS runtime_image_pins (runtime text PRIMARY KEY, image text NOT NULL);
      ALTER TABLE runtime_image_pins
        ADD COLUMN IF NOT EXISTS digest text,
        ADD COLUMN IF NOT EXISTS tag text,
        ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
        ADD COLUMN IF NOT EXISTS updated_by text NOT NULL DEFAULT 'unknown',
        ADD COLUMN IF NOT EXISTS reason text;
      CREATE TABLE IF NOT EXISTS runtime_image_pin_history (
        id bigserial PRIMARY KEY,
        runtime text NOT NULL,
        from_digest text,
        to_digest text NOT NULL,
        image text NOT NULL,
        tag text,
        "at" timestamptz NOT NULL DEFAULT now(),
        "by" text NOT NULL,
        reason text,
        forced boolean NOT NULL DEFAULT false,
        kind text NOT NULL CHECK (kind IN ('promote', 'rollback'))
      );
      CREATE INDEX IF NOT EXISTS runtime_image_pin_history_runtime_idx
        ON runtime_image_pin_history (runtime, id DESC);`,
  },
  {
    version: 2,
    name: 'image_smoke_records',
    sql: `
      CREATE TABLE IF NOT EXISTS image_smoke_records (
        id bigserial PRIMARY KEY,
        repository text NOT NULL,
        digest text NOT NULL,
        spec_digest text NOT NULL,
        passed boolean NOT NULL,
        "at" timestamptz NOT NULL,
        "by" text NOT NULL,
        summary text NOT NULL
      );
      CREATE INDEX IF NOT EXISTS image_smoke_records_digest_idx ON image_smoke_records (digest, id DESC);`,
  },
];

/** The newest migration version this Slipway knows. */
export const PIN_STORE_SCHEMA_VERSION = PIN_STORE_MIGRATIONS[PIN_STORE_MIGRATIONS.length - 1]?.version ?? 0;

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
// pg error codes that mean the connection (not the statement) failed: class 08, and the
// admin/crash shutdowns a pg_terminate_backend or a restart produce.
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03']);
const CONFLICT_SQLSTATES = new Set(['23505', '40001', '40P01', '55P03']);

/** The URL without user-info, for messages: `postgres://127.0.0.1:5432/slipway`. */
export function describePostgresUrl(url: string, schema?: string): string {
  let out: string;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    out = u.toString();
  } catch {
    out = new Redactor().redact(url);
  }
  return schema ? `${out} (schema ${schema})` : out;
}

/** Translates a pg/network error into a SlipwayError, never carrying the password. */
export function translatePgError(err: unknown, url: string, what: string, schema?: string): SlipwayError {
  if (err instanceof SlipwayError) return err;
  const where = describePostgresUrl(url, schema);
  const redactor = new Redactor();
  try {
    redactor.add(decodeURIComponent(new URL(url).password));
  } catch {
    // Not a URL: the pattern-based redaction below still applies.
  }
  const message = redactor.redact(messageOf(err));
  const code = (err as { code?: unknown }).code;
  const sqlstate = typeof code === 'string' ? code : '';
  if (
    isUnreachable(err) ||
    isTimeout(err) ||
    sqlstate.startsWith('08') ||
    CONNECTION_SQLSTATES.has(sqlstate) ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error/i.test(
      message,
    )
  ) {
    return new SlipwayError('DATABASE_UNREACHABLE', `${what}: database ${where} unreachable (${message})`, {
      resource: where,
      hint: 'check that PostgreSQL is running and the URL is right; nothing was changed unless the change was reported as done',
    });
  }
  if (CONFLICT_SQLSTATES.has(sqlstate)) {
    return new SlipwayError('PIN_CONFLICT', `${what}: concurrent change in ${where} (${message})`, {
      resource: where,
      hint: 'another promotion changed the pin at the same time; read it again (slipway pins list) and retry',
    });
  }
  if (sqlstate === '28P01' || sqlstate === '28000') {
    return new SlipwayError('STORE_ERROR', `${what}: database ${where} refused the credentials`, {
      resource: where,
      hint: 'check the user and password in the pin store URL (SLIPWAY_PIN_STORE / --store)',
    });
  }
  return new SlipwayError('STORE_ERROR', `${what}: ${where}: ${message}`, { resource: where });
}

async function poolFor(url: string, options: PostgresPinStoreOptions): Promise<pg.Pool> {
  // pg loads only when a postgres:// store is opened (the CLI's start-up does not pay for it).
  const { default: pgModule } = await import('pg');
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const lockMs = Math.max(1, Math.round(options.lockTimeoutMs ?? 30_000));
  // A statement may wait for a row lock (then PIN_CONFLICT) before its own deadline applies.
  const statementMs = lockMs + timeouts.operationMs;
  const settings = [
    `-c lock_timeout=${lockMs}`,
    `-c statement_timeout=${statementMs}`,
    `-c idle_in_transaction_session_timeout=${timeouts.operationMs}`,
  ];
  if (options.schema !== undefined) settings.push(`-c search_path=${options.schema}`);
  const pool = new pgModule.Pool({
    connectionString: url,
    max: 2,
    connectionTimeoutMillis: options.connectTimeoutMs ?? timeouts.requestMs,
    // Client side too: a server that stops answering mid-query never sends statement_timeout's error.
    query_timeout: statementMs + timeouts.requestMs,
    options: settings.join(' '),
  });
  // An idle connection the server drops emits 'error' on the pool; unhandled it would crash
  // the process. The next query gets a fresh connection and reports any real outage itself.
  pool.on('error', () => {});
  return pool;
}

function checkSchema(schema: string | undefined): void {
  if (schema !== undefined && !SCHEMA_RE.test(schema)) {
    throw new SlipwayError('USAGE', `invalid schema name "${schema}"`, {
      hint: 'use lowercase letters, digits and _ (starting with a letter or _)',
    });
  }
}

/** Applies the pending migrations under an advisory lock (safe to run concurrently); returns the versions applied. */
export async function migratePostgresPinStore(
  url: string,
  options: PostgresPinStoreOptions = {},
): Promise<{ applied: number[]; version: number }> {
  checkSchema(options.schema);
  const pool = await poolFor(url, options);
  try {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // One migrator at a time per database; the lock ends with the transaction.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('slipway_migrations'))");
      if (options.schema !== undefined) {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
        await client.query(`SET LOCAL search_path TO "${options.schema}"`);
      }
      await client.query(`CREATE TABLE IF NOT EXISTS slipway_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set(
        (await client.query<{ version: number }>('SELECT version FROM slipway_migrations')).rows.map(
          (r) => r.version,
        ),
      );
      const applied: number[] = [];
      for (const m of PIN_STORE_MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO slipway_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        applied.push(m.version);
      }
      await client.query('COMMIT');
      client.release();
      return { applied, version: PIN_STORE_SCHEMA_VERSION };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release(true);
      throw err;
    }
  } catch (err) {
    throw translatePgError(err, url, 'migrating the pin store', options.schema);
  } finally {
    await pool.end().catch(() => {});
  }
}

interface PinRow {
  runtime: string;
  image: string;
  digest: string | null;
  tag: string | null;
  updated_at: Date;
  updated_by: string;
  reason: string | null;
}

interface HistoryRow {
  id: string;
  runtime: string;
  from_digest: string | null;
  to_digest: string;
  image: string;
  tag: string | null;
  at: Date;
  by: string;
  reason: string | null;
  forced: boolean;
  kind: 'promote' | 'rollback';
}

interface SmokeRow {
  repository: string;
  digest: string;
  spec_digest: string;
  passed: boolean;
  at: Date;
  by: string;
  summary: string;
}

function toPin(r: PinRow): PinRecord {
  return {
    runtime: r.runtime,
    image: r.image,
    // A row the control plane wrote before Slipway (a tag, no digest) has no digest yet.
    digest: r.digest ?? '',
    tag: r.tag,
    updatedAt: r.updated_at.toISOString(),
    updatedBy: r.updated_by,
    reason: r.reason,
  };
}

function toHistory(r: HistoryRow): PinHistoryEntry {
  return {
    id: Number(r.id),
    runtime: r.runtime,
    fromDigest: r.from_digest,
    toDigest: r.to_digest,
    image: r.image,
    tag: r.tag,
    at: r.at.toISOString(),
    by: r.by,
    reason: r.reason,
    forced: r.forced,
    kind: r.kind,
  };
}

const PIN_COLUMNS = 'runtime, image, digest, tag, updated_at, updated_by, reason';
const HISTORY_COLUMNS = 'id, runtime, from_digest, to_digest, image, tag, "at", "by", reason, forced, kind';

/** The `postgres://` pin store. Open it with {@link openPostgresPinStore}. */
export class PostgresPinStore implements PinStore {
  readonly description: string;

  private constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    private readonly options: PostgresPinStoreOptions,
  ) {
    this.description = describePostgresUrl(url, options.schema);
  }

  /** Connects and checks the schema is migrated (STORE_ERROR with the migrate hint otherwise). */
  static async open(url: string, options: PostgresPinStoreOptions = {}): Promise<PostgresPinStore> {
    checkSchema(options.schema);
    const store = new PostgresPinStore(url, await poolFor(url, options), options);
    try {
      await store.checkMigrated();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private fail(err: unknown, what: string): SlipwayError {
    return translatePgError(err, this.url, what, this.options.schema);
  }

  private async checkMigrated(): Promise<void> {
    let version = 0;
    try {
      const r = await this.pool.query<{ v: number | null }>(
        'SELECT max(version) AS v FROM slipway_migrations',
      );
      version = r.rows[0]?.v ?? 0;
    } catch (err) {
      if ((err as { code?: unknown }).code !== '42P01') throw this.fail(err, 'opening the pin store');
    }
    if (version < PIN_STORE_SCHEMA_VERSION) {
      throw new SlipwayError(
        'STORE_ERROR',
        `pin store ${this.description} is not migrated (schema version ${version}, this Slipway needs ${PIN_STORE_SCHEMA_VERSION})`,
        { resource: this.description, hint: 'run `slipway pins migrate` (with the same --store) first' },
      );
    }
  }

  async getPin(runtime: string): Promise<PinRecord | null> {
    try {
      const r = await this.pool.query<PinRow>(
        `SELECT ${PIN_COLUMNS} FROM runtime_image_pins WHERE runtime = $1`,
        [runtime],
      );
      return r.rows[0] ? toPin(r.rows[0]) : null;
    } catch (err) {
      throw this.fail(err, `reading the pin of ${runtime}`);
    }
  }

  async listPins(): Promise<PinRecord[]> {
    try {
      const r = await this.pool.query<PinRow>(
        `SELECT ${PIN_COLUMNS} FROM runtime_image_pins ORDER BY runtime`,
      );
      return r.rows.map(toPin);
    } catch (err) {
      throw this.fail(err, 'listing pins');
    }
  }

  async compareAndSet(expectedDigest: string | null, change: PinChange): Promise<PinRecord> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.fail(err, `moving the pin of ${change.runtime}`);
    }
    let broken: Error | undefined;
    // A connection that dies mid-transaction emits 'error' on the client; keep it from crashing.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const values = [change.runtime, change.image, change.digest, change.tag, change.by, change.reason];
      let rows: PinRow[];
      if (expectedDigest === null) {
        rows = (
          await client.query<PinRow>(
            `INSERT INTO runtime_image_pins (runtime, image, digest, tag, updated_at, updated_by, reason)
             VALUES ($1, $2, $3, $4, now(), $5, $6) ON CONFLICT (runtime) DO NOTHING RETURNING ${PIN_COLUMNS}`,
            values,
          )
        ).rows;
      } else {
        rows = [];
      }
      if (rows.length === 0) {
        // Also covers a first Slipway pin over a control-plane row that has no digest yet.
        rows = (
          await client.query<PinRow>(
            `UPDATE runtime_image_pins SET image = $2, digest = $3, tag = $4, updated_at = now(),
               updated_by = $5, reason = $6
             WHERE runtime = $1 AND digest IS NOT DISTINCT FROM $7 RETURNING ${PIN_COLUMNS}`,
            [...values, expectedDigest],
          )
        ).rows;
      }
      const row = rows[0];
      if (!row) {
        await client.query('ROLLBACK');
        const actual = await client.query<{ digest: string | null }>(
          'SELECT digest FROM runtime_image_pins WHERE runtime = $1',
          [change.runtime],
        );
        const current = actual.rows[0];
        throw pinConflict(
          change.runtime,
          expectedDigest,
          current ? (current.digest ?? '') : null,
          this.description,
        );
      }
      await client.query(
        `INSERT INTO runtime_image_pin_history
           (runtime, from_digest, to_digest, image, tag, "at", "by", reason, forced, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          change.runtime,
          expectedDigest,
          change.digest,
          change.image,
          change.tag,
          row.updated_at,
          change.by,
          change.reason,
          change.forced,
          change.kind,
        ],
      );
      if (this.options.testHooks?.beforeCommit) {
        await this.options.testHooks.beforeCommit({
          backendPid: (client as unknown as { processID: number }).processID,
        });
      }
      await client.query('COMMIT');
      client.off('error', onError);
      client.release();
      return toPin(row);
    } catch (err) {
      if (!broken) await client.query('ROLLBACK').catch(() => {});
      // Destroy the connection: after a failure mid-transaction it must not return to the pool.
      client.release(true);
      throw this.fail(err, `moving the pin of ${change.runtime}`);
    }
  }

  async history(runtime: string): Promise<PinHistoryEntry[]> {
    try {
      const r = await this.pool.query<HistoryRow>(
        `SELECT ${HISTORY_COLUMNS} FROM runtime_image_pin_history WHERE runtime = $1 ORDER BY id DESC`,
        [runtime],
      );
      return r.rows.map(toHistory);
    } catch (err) {
      throw this.fail(err, `reading the history of ${runtime}`);
    }
  }

  async recordSmoke(record: SmokeRecord): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO image_smoke_records (repository, digest, spec_digest, passed, "at", "by", summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          record.repository,
          record.digest,
          record.specDigest,
          record.passed,
          record.at,
          record.by,
          record.summary,
        ],
      );
    } catch (err) {
      throw this.fail(err, `recording the smoke result of ${record.digest}`);
    }
  }

  async smokeRecords(digest: string): Promise<SmokeRecord[]> {
    try {
      const r = await this.pool.query<SmokeRow>(
        `SELECT repository, digest, spec_digest, passed, "at", "by", summary FROM image_smoke_records
         WHERE digest = $1 ORDER BY "at" DESC, id DESC`,
        [digest],
      );
      return r.rows.map((s) => ({
        repository: s.repository,
        digest: s.digest,
        specDigest: s.spec_digest,
        passed: s.passed,
        at: s.at.toISOString(),
        by: s.by,
        summary: s.summary,
      }));
    } catch (err) {
      throw this.fail(err, `reading smoke records of ${digest}`);
    }
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }
}

/** Opens the `postgres://` pin store (checks it is migrated). */
export function openPostgresPinStore(url: string, options: PostgresPinStoreOptions = {}): Promise<PinStore> {
  return PostgresPinStore.open(url, options);
}
