import { describe, expect, it } from 'vitest';
import { SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { openRegistry } from '../publish/open.js';
import type { Registry } from '../publish/registry.js';
import type { PinHistoryEntry, PinRecord, SmokeRecord } from './pin-store.js';
import { planPromotion, registryRepository, rollbackTarget, smokeGate } from './promote.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const NAME = '127.0.0.1:5000/molecule-ai/molecule-platform-agent';
const target = ImageRef.parse(`${NAME}@${d('b')}`);

function smoke(over: Partial<SmokeRecord> = {}): SmokeRecord {
  return {
    repository: NAME,
    digest: d('b'),
    specDigest: d('5'),
    passed: true,
    at: '2025-01-02T00:00:00.000Z',
    by: 'ci',
    summary: '7/7 assertions passed',
    ...over,
  };
}

const current: PinRecord = {
  runtime: 'platform-agent',
  image: `${NAME}@${d('a')}`,
  digest: d('a'),
  tag: null,
  updatedAt: '2025-01-01T00:00:00.000Z',
  updatedBy: 'ci',
  reason: null,
};

function thrown(fn: () => unknown): SlipwayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SlipwayError) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError');
}

describe('smokeGate', () => {
  it('passes on a passing record for the same repository and digest', () => {
    expect(smokeGate(target, [smoke()])).toEqual({
      passed: true,
      record: smoke(),
      message: 'smoke passed at 2025-01-02T00:00:00.000Z (7/7 assertions passed)',
    });
  });

  it('fails closed: no record, another repository, or a newer failed run', () => {
    expect(smokeGate(target, [])).toEqual({
      passed: false,
      record: null,
      message: `${NAME}@${d('b')} has no smoke record`,
    });
    expect(smokeGate(target, [smoke({ repository: '127.0.0.1:5000/molecule-ai/platform' })]).passed).toBe(
      false,
    );
    const failed = smoke({ passed: false, at: '2025-01-03T00:00:00.000Z', summary: '2/7' });
    expect(smokeGate(target, [smoke(), failed])).toEqual({
      passed: false,
      record: failed,
      message: `the newest smoke run of ${NAME}@${d('b')} failed (2/7)`,
    });
  });
});

describe('planPromotion', () => {
  it('plans a gated move from the current digest', () => {
    expect(
      planPromotion({
        runtime: 'platform-agent',
        current,
        target,
        tag: 'staging-latest',
        smokeRecords: [smoke()],
        by: 'alice',
      }),
    ).toEqual({
      version: 1,
      kind: 'promote',
      runtime: 'platform-agent',
      from: { image: `${NAME}@${d('a')}`, digest: d('a') },
      to: { image: `${NAME}@${d('b')}`, name: NAME, digest: d('b'), tag: 'staging-latest' },
      expect: d('a'),
      conflict: false,
      noop: false,
      forced: false,
      reason: null,
      by: 'alice',
      gate: smokeGate(target, [smoke()]),
      allowed: true,
    });
  });

  it('refuses without smoke unless forced with a reason', () => {
    const base = { runtime: 'platform-agent', current, target, smokeRecords: [], by: 'ops' };
    expect(planPromotion(base)).toMatchObject({ allowed: false, forced: false });
    expect(thrown(() => planPromotion({ ...base, force: true })).code).toBe('USAGE');
    expect(thrown(() => planPromotion({ ...base, force: true, reason: '   ' })).code).toBe('USAGE');
    expect(planPromotion({ ...base, force: true, reason: ' hotfix ' })).toMatchObject({
      allowed: true,
      forced: true,
      reason: 'hotfix',
    });
  });

  it('a promotion to the current digest is a no-op; a stale --expect is a conflict', () => {
    const same = ImageRef.parse(`${NAME}@${d('a')}`);
    expect(planPromotion({ runtime: 'r', current, target: same, smokeRecords: [], by: 'x' })).toMatchObject({
      noop: true,
      allowed: true,
      forced: false,
    });
    expect(
      planPromotion({ runtime: 'r', current, target, smokeRecords: [smoke()], by: 'x', expect: d('c') }),
    ).toMatchObject({ expect: d('c'), conflict: true });
    expect(
      planPromotion({ runtime: 'r', current: null, target, smokeRecords: [smoke()], by: 'x', expect: null }),
    ).toMatchObject({ from: null, expect: null, conflict: false });
  });

  it('refuses a target that is not pinned by digest', () => {
    const tagged = ImageRef.parse(`${NAME}:staging-latest`);
    expect(
      thrown(() => planPromotion({ runtime: 'r', current, target: tagged, smokeRecords: [], by: 'x' })).code,
    ).toBe('USAGE');
  });
});

describe('rollbackTarget', () => {
  const entry = (
    id: number,
    from: string | null,
    to: string,
    tag: string | null = null,
  ): PinHistoryEntry => ({
    id,
    runtime: 'platform-agent',
    fromDigest: from,
    toDigest: to,
    image: `${NAME}@${to}`,
    tag,
    at: `2025-01-0${id}T00:00:00.000Z`,
    by: 'ci',
    reason: null,
    forced: false,
    kind: 'promote',
  });
  const history = [entry(3, d('b'), d('c')), entry(2, d('a'), d('b'), 'v2'), entry(1, null, d('a'), 'v1')];

  it('targets the previous pin by default and a chosen entry with --to', () => {
    expect(rollbackTarget('platform-agent', history)).toEqual({
      image: `${NAME}@${d('b')}`,
      tag: 'v2',
      entry: history[0],
    });
    expect(rollbackTarget('platform-agent', history, 1)).toEqual({
      image: `${NAME}@${d('a')}`,
      tag: 'v1',
      entry: history[2],
    });
  });

  it('falls back to the newest entry repository when the previous digest has no entry', () => {
    expect(rollbackTarget('platform-agent', [entry(7, d('9'), d('c'))])).toEqual({
      image: `${NAME}@${d('9')}`,
      tag: null,
      entry: entry(7, d('9'), d('c')),
    });
  });

  it('says when there is nothing to roll back to', () => {
    expect(thrown(() => rollbackTarget('platform-agent', [])).code).toBe('PIN_NOT_FOUND');
    expect(thrown(() => rollbackTarget('platform-agent', [entry(1, null, d('a'))])).message).toContain(
      'no previous pin',
    );
    expect(thrown(() => rollbackTarget('platform-agent', history, 99)).code).toBe('PIN_NOT_FOUND');
  });
});

describe('registryRepository', async () => {
  // Opening an OCI registry does no I/O; the mapping is the registry's own.
  const registry: Registry = await openRegistry('oci://127.0.0.1:5000/prefix');

  it('strips the registry host and prefix from a full name', () => {
    expect(registryRepository(registry, ImageRef.parse('127.0.0.1:5000/prefix/molecule-ai/x:t'))).toBe(
      'molecule-ai/x',
    );
    expect(registryRepository(registry, ImageRef.parse('molecule-ai/x:t'))).toBe('molecule-ai/x');
  });

  it('refuses a name in another registry', () => {
    expect(thrown(() => registryRepository(registry, ImageRef.parse('other.io/molecule-ai/x:t'))).code).toBe(
      'USAGE',
    );
    expect(thrown(() => registryRepository(registry, ImageRef.parse('127.0.0.1:5000/other/x:t'))).code).toBe(
      'USAGE',
    );
  });
});
