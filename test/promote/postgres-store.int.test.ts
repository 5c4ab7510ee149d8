import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SlipwayError } from '../../src/core/errors.js';
import { migratePinStore, openPinStore, type PinStoreOptions } from '../../src/promote/open.js';
import type { PinStore } from '../../src/promote/pin-store.js';
import { promote, rollback } from '../../src/promote/promote.js';
import { pgUrl, requireServices } from '../support/services.js';
import { digestOf, dropSchema, freshSchemaName, REPO, smoke } from './helpers.js';

const schemas: string[] = [];
const stores: PinStore[] = [];

async function migratedStore(extra: PinStoreOptions = {}): Promise<{ store: PinStore; schema: string }> {
  const schema = freshSchemaName();
  schemas.push(schema);
  await migratePinStore(pgUrl, { schema });
  const store = await openPinStore(pgUrl, { schema, ...extra });
  stores.push(store);
  return { store, schema };
}

async function caught(p: Promise<unknown>): Promise<SlipwayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SlipwayError) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError, got success');
}

async function tablesIn(schema: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    const r = await c.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [schema],
    );
    return r.rows.map((row) => row.table_name);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await requireServices(['postgres']);
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

const A = digestOf('image-a');
const B = digestOf('image-b');
const C = digestOf('image-c');

describe('postgres pin store: migrations', () => {
  it('migrates once, then the second migrate is a no-op, and the tables exist', async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const first = await migratePinStore(pgUrl, { schema });
    const second = await migratePinStore(pgUrl, { schema });
    expect(first.applied).toEqual([1, 2]);
    expect(second.applied).toEqual([]);
    expect(second.version).toBe(2);
    expect(first.store).not.toContain('slipway:slipway');
    expect(await tablesIn(schema)).toEqual([
      'image_smoke_records',
      'runtime_image_pin_history',
      'runtime_image_pins',
      'slipway_migrations',
    ]);
  });

  it('two concurrent migrate calls apply each migration exactly once', async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const results = await Promise.all([
      migratePinStore(pgUrl, { schema }),
      migratePinStore(pgUrl, { schema }),
    ]);
    expect(results.map((r) => r.applied).sort((a, b) => b.length - a.length)).toEqual([[1, 2], []]);
  });

  it('refuses to open an unmigrated store and says how to migrate', async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const err = await caught(openPinStore(pgUrl, { schema }));
    expect(err.code).toBe('STORE_ERROR');
    expect(err.message).toContain('not migrated');
    expect(err.hint).toContain('slipway pins migrate');
  });

  it('adds its columns to a control-plane table that already exists', async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`CREATE SCHEMA "${schema}"`);
    await c.query(
      `CREATE TABLE "${schema}".runtime_image_pins (runtime text PRIMARY KEY, image text NOT NULL)`,
    );
    await c.query(
      `INSERT INTO "${schema}".runtime_image_pins VALUES ('platform-agent', 'molecule-platform-agent:staging-latest')`,
    );
    await c.end();
    await migratePinStore(pgUrl, { schema });
    const store = await openPinStore(pgUrl, { schema });
    stores.push(store);
    expect((await store.getPin('platform-agent'))?.image).toBe('molecule-platform-agent:staging-latest');
    await store.recordSmoke(smoke(A));
    const result = await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
    expect(result.plan.from).toEqual({ image: 'molecule-platform-agent:staging-latest', digest: null });
    expect((await store.getPin('platform-agent'))?.digest).toBe(A);
  });
});

describe('postgres pin store: promotion', () => {
  it('promotes, lists, records history and rolls back', async () => {
    const { store } = await migratedStore();
    await store.recordSmoke(smoke(A));
    await store.recordSmoke(smoke(B));
    const first = await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'alice' });
    expect(first.applied).toBe(true);
    const second = await promote(store, {
      runtime: 'platform-agent',
      ref: `${REPO}:staging-latest@${B}`,
      by: 'bob',
      reason: 'fix identity',
    });
    expect(second.plan.from?.digest).toBe(A);

    const pins = await store.listPins();
    expect(pins.map((p) => ({ ...p, updatedAt: 'T' }))).toEqual([
      {
        runtime: 'platform-agent',
        image: `${REPO}@${B}`,
        digest: B,
        tag: 'staging-latest',
        updatedAt: 'T',
        updatedBy: 'bob',
        reason: 'fix identity',
      },
    ]);
    const history = await store.history('platform-agent');
    expect(history.map((h) => [h.fromDigest, h.toDigest, h.by, h.kind, h.forced])).toEqual([
      [A, B, 'bob', 'promote', false],
      [null, A, 'alice', 'promote', false],
    ]);

    const back = await rollback(store, { runtime: 'platform-agent', by: 'carol', reason: 'B broke login' });
    expect(back.plan.kind).toBe('rollback');
    expect((await store.getPin('platform-agent'))?.image).toBe(`${REPO}@${A}`);
    const after = await store.history('platform-agent');
    expect(after).toHaveLength(3);
    expect(after[0]).toMatchObject({ fromDigest: B, toDigest: A, kind: 'rollback', by: 'carol' });

    // Roll forward to a chosen entry: entry of B.
    const entryB = after.find((h) => h.toDigest === B);
    await rollback(store, { runtime: 'platform-agent', to: entryB?.id, by: 'carol' });
    expect((await store.getPin('platform-agent'))?.digest).toBe(B);
  });

  it('refuses a digest without a passing smoke record and leaves the pin unchanged', async () => {
    const { store } = await migratedStore();
    await store.recordSmoke(smoke(A));
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
    await store.recordSmoke(smoke(C, false));

    for (const digest of [B, C]) {
      const err = await caught(
        promote(store, {
          runtime: 'platform-agent',
          ref: `${REPO}@${digest}`,
          by: 'ci',
          imageName: 'platform-agent',
        }),
      );
      expect(err.code).toBe('GATE_REFUSED');
      expect(err.exitCode).toBe(1);
      expect(err.message).toContain(digest);
      expect(err.hint).toContain(`slipway smoke platform-agent --ref ${REPO}@${digest}`);
    }
    // A pass recorded for another repository does not count for this one.
    await store.recordSmoke(smoke(B, true, '127.0.0.1:5000/molecule-ai/platform'));
    expect(
      (await caught(promote(store, { runtime: 'platform-agent', ref: `${REPO}@${B}`, by: 'ci' }))).code,
    ).toBe('GATE_REFUSED');
    expect((await store.getPin('platform-agent'))?.digest).toBe(A);
    expect(await store.history('platform-agent')).toHaveLength(1);
  });

  it('records a forced promotion with its reason and refuses --force without a reason', async () => {
    const { store } = await migratedStore();
    const noReason = await caught(
      promote(store, {
        runtime: 'platform-agent',
        ref: `${REPO}@${A}`,
        by: 'ops',
        force: true,
        reason: '  ',
      }),
    );
    expect(noReason.code).toBe('USAGE');
    expect(await store.getPin('platform-agent')).toBeNull();

    const result = await promote(store, {
      runtime: 'platform-agent',
      ref: `${REPO}@${A}`,
      by: 'ops',
      force: true,
      reason: 'incident 42: smoke runner down',
    });
    expect(result.plan.forced).toBe(true);
    const [entry] = await store.history('platform-agent');
    expect(entry).toMatchObject({
      forced: true,
      reason: 'incident 42: smoke runner down',
      by: 'ops',
      toDigest: A,
    });
  });

  it('treats a promotion to the current digest as a no-op and a dry run as read-only', async () => {
    const { store } = await migratedStore();
    await store.recordSmoke(smoke(A));
    await store.recordSmoke(smoke(B));
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
    const again = await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
    expect(again.plan.noop).toBe(true);
    expect(again.applied).toBe(false);
    const dry = await promote(store, {
      runtime: 'platform-agent',
      ref: `${REPO}@${B}`,
      by: 'ci',
      dryRun: true,
    });
    expect(dry.plan).toMatchObject({ from: { digest: A }, to: { digest: B }, noop: false, allowed: true });
    expect(dry.applied).toBe(false);
    expect((await store.getPin('platform-agent'))?.digest).toBe(A);
    expect(await store.history('platform-agent')).toHaveLength(1);
  });

  it('refuses with PIN_CONFLICT when --expect is not the current digest', async () => {
    const { store } = await migratedStore();
    await store.recordSmoke(smoke(A));
    await store.recordSmoke(smoke(B));
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
    const err = await caught(
      promote(store, { runtime: 'platform-agent', ref: `${REPO}@${B}`, by: 'ci', expect: C }),
    );
    expect(err.code).toBe('PIN_CONFLICT');
    expect(err.message).toContain(`expected ${C}`);
    expect(err.message).toContain(`found ${A}`);
    expect(err.message).toContain('platform-agent');
    expect(err.hint).toContain('slipway pins history platform-agent');
    // Direct compare-and-set against a stale digest: the store itself refuses.
    const direct = await caught(
      store.compareAndSet(null, {
        runtime: 'platform-agent',
        image: `${REPO}@${B}`,
        digest: B,
        tag: null,
        by: 'x',
        reason: null,
        forced: false,
        kind: 'promote',
      }),
    );
    expect(direct.code).toBe('PIN_CONFLICT');
    expect((await store.getPin('platform-agent'))?.digest).toBe(A);
  });

  it('lets exactly one of 20 concurrent promotions from the same digest win', async () => {
    const { store, schema } = await migratedStore();
    await store.recordSmoke(smoke(A));
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'seed' });
    const targets = Array.from({ length: 20 }, (_, i) => digestOf(`racer-${i}`));
    for (const d of targets) await store.recordSmoke(smoke(d));
    const racers = await Promise.all(targets.map(() => openPinStore(pgUrl, { schema })));
    stores.push(...racers);
    const outcomes = await Promise.allSettled(
      racers.map((s, i) =>
        promote(s, { runtime: 'platform-agent', ref: `${REPO}@${targets[i]}`, by: `racer-${i}`, expect: A }),
      ),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    expect(lost.every((e) => e instanceof SlipwayError && e.code === 'PIN_CONFLICT')).toBe(true);
    const history = await store.history('platform-agent');
    expect(history).toHaveLength(2);
    const pin = await store.getPin('platform-agent');
    expect(history[0]?.toDigest).toBe(pin?.digest);
    expect(history[0]?.fromDigest).toBe(A);
  });

  it('leaves the pin unchanged when the connection dies between the writes and COMMIT', async () => {
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    try {
      const { store, schema } = await migratedStore();
      await store.recordSmoke(smoke(A));
      await store.recordSmoke(smoke(B));
      await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' });
      const doomed = await openPinStore(pgUrl, {
        schema,
        testHooks: {
          beforeCommit: async ({ backendPid }) => {
            // The backend holds the row lock and the uncommitted history row right now.
            await admin.query('SELECT pg_terminate_backend($1)', [backendPid]);
          },
        },
      });
      stores.push(doomed);
      const err = await caught(promote(doomed, { runtime: 'platform-agent', ref: `${REPO}@${B}`, by: 'ci' }));
      expect(err.code).toBe('DATABASE_UNREACHABLE');
      expect(err.message).not.toContain('slipway:slipway');
      const pin = await store.getPin('platform-agent');
      expect(pin?.digest).toBe(A);
      expect(await store.history('platform-agent')).toHaveLength(1);
      // The lock died with the backend: the next promotion goes through.
      await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${B}`, by: 'ci' });
      expect((await store.getPin('platform-agent'))?.digest).toBe(B);
    } finally {
      await admin.end();
    }
  });

  it('never prints the password: wrong password and unreachable database', async () => {
    const secret = 'hunter2-very-secret';
    const wrong = pgUrl.replace(/:[^:@/]+@/, `:${secret}@`);
    const bad = await caught(openPinStore(wrong, { schema: 'public' }));
    expect(bad.code).toBe('STORE_ERROR');
    expect(JSON.stringify(bad.toJSON())).not.toContain(secret);

    const down = await caught(
      openPinStore(`postgres://slipway:${secret}@127.0.0.1:1/slipway`, { connectTimeoutMs: 2000 }),
    );
    expect(down.code).toBe('DATABASE_UNREACHABLE');
    expect(down.exitCode).toBe(3);
    expect(JSON.stringify(down.toJSON())).not.toContain(secret);
    expect(down.message).toContain('127.0.0.1:1');
  });
});
