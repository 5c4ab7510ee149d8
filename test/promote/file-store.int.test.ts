import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlipwayError } from '../../src/core/errors.js';
import { FilePinStore, PinFileSchema } from '../../src/promote/file-store.js';
import { migratePinStore, openPinStore } from '../../src/promote/open.js';
import { promote, rollback } from '../../src/promote/promote.js';
import { makeTempDir } from '../support/temp.js';
import { digestOf, REPO, smoke } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const promoter = path.join(here, 'fixtures', 'file-promoter.ts');
let dir: string;

beforeAll(async () => {
  dir = makeTempDir('pins');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
function freshFile(): string {
  n += 1;
  return path.join(dir, `case-${n}`, 'pins.json');
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

const A = digestOf('file-a');
const B = digestOf('file-b');

describe('file pin store', () => {
  it('promotes, lists, records history and rolls back, in one diff-friendly JSON document', async () => {
    const file = freshFile();
    const store = await openPinStore(`file:${path.relative(dir, file)}`, { cwd: dir });
    await store.recordSmoke(smoke(A));
    await store.recordSmoke(smoke(B));
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'alice' });
    await promote(store, { runtime: 'platform-agent', ref: `${REPO}:staging-latest@${B}`, by: 'bob' });
    await rollback(store, { runtime: 'platform-agent', by: 'carol', reason: 'B broke login' });

    expect((await store.listPins()).map((p) => [p.runtime, p.image, p.updatedBy])).toEqual([
      ['platform-agent', `${REPO}@${A}`, 'carol'],
    ]);
    expect(
      (await store.history('platform-agent')).map((h) => [h.id, h.fromDigest, h.toDigest, h.kind]),
    ).toEqual([
      [3, B, A, 'rollback'],
      [2, A, B, 'promote'],
      [1, null, A, 'promote'],
    ]);

    const text = await readFile(file, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    const doc = JSON.parse(text);
    expect(Object.keys(doc)).toEqual(['version', 'pins', 'history', 'smokeRecords']);
    expect(Object.keys(doc.pins['platform-agent'])).toEqual([
      'runtime',
      'image',
      'digest',
      'tag',
      'updatedAt',
      'updatedBy',
      'reason',
    ]);
    expect(text).toContain('\n  "pins": {\n    "platform-agent": {\n      "runtime": "platform-agent",');
    expect(doc.history.map((h: { id: number }) => h.id)).toEqual([1, 2, 3]);
  });

  it('gates, forces with a reason, no-ops and dry-runs like the database store', async () => {
    const store = new FilePinStore(`file:${freshFile()}`);
    const refused = await caught(
      promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci' }),
    );
    expect(refused.code).toBe('GATE_REFUSED');
    expect(refused.hint).toContain(`--ref ${REPO}@${A}`);
    expect(await store.getPin('platform-agent')).toBeNull();

    expect(
      (
        await caught(
          promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ops', force: true }),
        )
      ).code,
    ).toBe('USAGE');
    await promote(store, {
      runtime: 'platform-agent',
      ref: `${REPO}@${A}`,
      by: 'ops',
      force: true,
      reason: 'hotfix',
    });
    expect((await store.history('platform-agent'))[0]).toMatchObject({ forced: true, reason: 'hotfix' });

    const again = await promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ops' });
    expect(again.plan.noop).toBe(true);
    await store.recordSmoke(smoke(B));
    const dry = await promote(store, {
      runtime: 'platform-agent',
      ref: `${REPO}@${B}`,
      by: 'ops',
      dryRun: true,
    });
    expect(dry.plan).toMatchObject({ from: { digest: A }, to: { digest: B } });
    expect((await store.getPin('platform-agent'))?.digest).toBe(A);
    expect(await store.history('platform-agent')).toHaveLength(1);
  });

  it('refuses a corrupt file, naming it, and never resets it', async () => {
    const file = freshFile();
    const store = new FilePinStore(`file:${file}`);
    await store.recordSmoke(smoke(A));
    const corrupt = '{"version": 1, "pins": {';
    await writeFile(file, corrupt);
    const read = await caught(store.listPins());
    expect(read.code).toBe('STORE_ERROR');
    expect(read.message).toContain(file);
    const write = await caught(
      promote(store, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'ci', force: true, reason: 'x' }),
    );
    expect(write.code).toBe('STORE_ERROR');
    expect(await readFile(file, 'utf8')).toBe(corrupt);
    expect((await caught(migratePinStore(`file:${file}`))).code).toBe('STORE_ERROR');
  });

  it('lets exactly one of 20 concurrent promotions (separate store instances) win', async () => {
    const file = freshFile();
    const seed = new FilePinStore(`file:${file}`);
    await seed.recordSmoke(smoke(A));
    await promote(seed, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'seed' });
    const targets = Array.from({ length: 20 }, (_, i) => digestOf(`file-racer-${i}`));
    for (const d of targets) await seed.recordSmoke(smoke(d));
    const outcomes = await Promise.allSettled(
      targets.map((d, i) =>
        promote(new FilePinStore(`file:${file}`), {
          runtime: 'platform-agent',
          ref: `${REPO}@${d}`,
          by: `racer-${i}`,
          expect: A,
        }),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(lost.map((e) => (e instanceof SlipwayError ? e.code : String(e)))).toEqual(
      Array(19).fill('PIN_CONFLICT'),
    );
    const history = await seed.history('platform-agent');
    expect(history).toHaveLength(2);
    expect(history[0]?.toDigest).toBe((await seed.getPin('platform-agent'))?.digest);
  });

  it('lets exactly one of 4 concurrent promoting processes win', async () => {
    const file = freshFile();
    const seed = new FilePinStore(`file:${file}`);
    await seed.recordSmoke(smoke(A));
    await promote(seed, { runtime: 'platform-agent', ref: `${REPO}@${A}`, by: 'seed' });
    const targets = Array.from({ length: 4 }, (_, i) => digestOf(`proc-racer-${i}`));
    for (const d of targets) await seed.recordSmoke(smoke(d));
    const run = promisify(execFile);
    const outs = await Promise.all(
      targets.map((d) =>
        run(process.execPath, ['--import', 'tsx', promoter, 'once', file, d, A], { timeout: 60_000 }),
      ),
    );
    expect(outs.map((o) => o.stdout.trim()).sort()).toEqual([
      'PIN_CONFLICT',
      'PIN_CONFLICT',
      'PIN_CONFLICT',
      'won',
    ]);
    expect(await seed.history('platform-agent')).toHaveLength(2);
  });

  /** The history length in the file now (0 while it is missing or being replaced). */
  async function historyLength(file: string): Promise<number> {
    try {
      return PinFileSchema.parse(JSON.parse(await readFile(file, 'utf8'))).history.length;
    } catch {
      return 0;
    }
  }

  it('survives a writer killed with SIGKILL at random moments: the file always parses and history matches the pin', async () => {
    const file = freshFile();
    const seed = new FilePinStore(`file:${file}`);
    const digests = Array.from({ length: 3 }, (_, i) => digestOf(`kill-${i}`));
    for (const d of digests) await seed.recordSmoke(smoke(d));
    const deadline = Date.now() + 150_000;
    let iterations = 0;
    let lastCount = 0;
    let grew = 0;
    while (iterations < 20 && Date.now() < deadline) {
      iterations += 1;
      const child: ChildProcess = spawn(
        process.execPath,
        ['--import', 'tsx', promoter, 'loop', file, ...digests],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Kill at a random moment after this writer's first write, however slow its start-up is on
      // a loaded machine: every kill lands while writes are going on.
      const startedBy = Date.now() + 60_000;
      while (Date.now() < startedBy && (await historyLength(file)) <= lastCount) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, Math.random() * 400));
      child.kill('SIGKILL');
      const code = await exited;
      // A child that died on its own (not by our SIGKILL) failed: show why.
      expect(code === null ? '' : stderr).toBe('');

      const text = await readFile(file, 'utf8');
      const doc = PinFileSchema.parse(JSON.parse(text));
      const history = doc.history;
      expect(history.map((h) => h.id)).toEqual(history.map((_, i) => i + 1));
      for (let i = 1; i < history.length; i++) expect(history[i]?.fromDigest).toBe(history[i - 1]?.toDigest);
      expect(doc.pins['platform-agent']?.digest).toBe(history[history.length - 1]?.toDigest);
      if (history.length > lastCount) grew += 1;
      lastCount = history.length;
    }
    expect(iterations).toBeGreaterThanOrEqual(15);
    // Every kill landed after its writer had written: the file grew in every round.
    expect(grew).toBe(iterations);
  }, 200_000);
});
