import { describe, expect, it } from 'vitest';
import { isSlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { recordSmoke } from './record.js';
import type { SmokeReport } from './report.js';
import type { SmokeRecord, SmokeVerdictStore } from './verdict-store.js';

/** The smallest store the port allows: verdicts in memory, newest first. */
class MemoryVerdicts implements SmokeVerdictStore {
  readonly records: SmokeRecord[] = [];
  async recordSmoke(record: SmokeRecord): Promise<void> {
    this.records.unshift(record);
  }
  async smokeRecords(digest: string): Promise<SmokeRecord[]> {
    return this.records.filter((r) => r.digest === digest);
  }
}

const D = `sha256:${'a'.repeat(64)}`;
const REPO = '127.0.0.1:5000/molecule-ai/molecule-platform-agent';

const report = (over: Partial<SmokeReport> = {}): SmokeReport => ({
  image: `${REPO}@${D}`,
  imageName: 'platform-agent',
  digest: D,
  specDigest: `sha256:${'b'.repeat(64)}`,
  passed: true,
  skipped: false,
  startedAt: '2026-01-02T03:04:05.000Z',
  durationMs: 10,
  assertions: [],
  evidence: {
    runId: 'r',
    imageId: 'sha256:1111',
    containerId: 'c',
    volumes: {},
    logTail: [],
    exitCode: null,
    readiness: 'ready',
    listings: {},
  },
  ...over,
});

describe('recordSmoke', () => {
  it('records the verdict under the repository the caller names (a reference or a name)', async () => {
    const store = new MemoryVerdicts();
    const at = new Date('2026-01-02T03:04:05Z');
    // The report's image string is a local id here: only the caller's value can name the repository.
    const local = report({ image: 'sha256:1111' });
    await recordSmoke(store, local, { by: 'ci-bot', at, repository: ImageRef.parse(`${REPO}:dev-1`) });
    await recordSmoke(store, report({ passed: false }), { by: 'ci-bot', at, repository: 'acme/other' });
    expect((await store.smokeRecords(D)).map((r) => [r.repository, r.passed, r.by, r.at])).toEqual([
      ['acme/other', false, 'ci-bot', '2026-01-02T03:04:05.000Z'],
      [REPO, true, 'ci-bot', '2026-01-02T03:04:05.000Z'],
    ]);
  });

  it("falls back to the report's image reference, and refuses one it cannot parse", async () => {
    const store = new MemoryVerdicts();
    expect((await recordSmoke(store, report(), { by: 'me' }))?.repository).toBe(REPO);
    const err = await recordSmoke(store, report({ image: 'Not A Ref' }), { by: 'me' }).catch((e) => e);
    expect(isSlipwayError(err, 'USAGE')).toBe(true);
    expect(store.records).toHaveLength(1);
  });

  it('writes nothing for a local image (no digest) or a skip', async () => {
    const store = new MemoryVerdicts();
    expect(await recordSmoke(store, report({ digest: null }), { by: 'me' })).toBeNull();
    expect(await recordSmoke(store, report({ skipped: true }), { by: 'me' })).toBeNull();
    expect(store.records).toEqual([]);
  });
});
