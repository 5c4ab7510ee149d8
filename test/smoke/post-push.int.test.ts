import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import { openPinStore } from '../../src/promote/open.js';
import { BOOT_TESTCASE, toJUnitXml } from '../../src/smoke/junit.js';
import { recordSmoke } from '../../src/smoke/record.js';
import { runSmoke } from '../../src/smoke/run.js';
import { digestDirectory } from '../../src/sources/tree.js';
import { registryAddr, requireServices } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';
import {
  buildFixture,
  docker,
  engine,
  expectNothingLeft,
  followProgress,
  referenceResults,
  referenceSpec,
  removeImages,
  templateDir,
  uniq,
} from './support.js';

const run = uniq();
const local = `slipway-smoke-test/agent:push-${run}`;
const stubLocal = `slipway-smoke-test/agent:push-stub-${run}`;
const repo = `${registryAddr}/slipway-test/smoke-agent-${run}`;
const tags: string[] = [local, stubLocal];
let templates: Record<string, { digest: string; ref: string | null }>;
let pushed: string;
let pushedStub: string;

/** Tags and pushes a local image with an empty authconfig; returns the digest the registry reported. */
async function push(source: string, tag: string): Promise<string> {
  await docker.getImage(source).tag({ repo, tag });
  tags.push(`${repo}:${tag}`);
  const stream = await docker.getImage(`${repo}:${tag}`).push({ authconfig: {} });
  const events = await followProgress(stream);
  const bad = events.find((e) => e.error);
  if (bad) throw new Error(`push failed: ${bad.error}`);
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error('push reported no digest');
  return digest;
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  templates = {
    'platform-agent': { digest: (await digestDirectory(templateDir)).digest, ref: 'a'.repeat(40) },
  };
  await buildFixture(local);
  await buildFixture(stubLocal, { FALLBACK: 'stub' });
  pushed = await push(local, 'staging-abc');
  pushedStub = await push(stubLocal, 'staging-stub');
  // Drop the registry tags locally so the smoke run has to pull what it boots.
  await removeImages([`${repo}:staging-abc`, `${repo}:staging-stub`]);
});

afterAll(async () => {
  await removeImages([...tags, `${repo}@${pushed}`, `${repo}@${pushedStub}`]);
});

describe('post-push smoke', () => {
  it('pulls the pushed digest, boots it, and records the verdict for that digest', async () => {
    const imageName = `platform-agent-${uniq()}`;
    const r = await runSmoke({
      engine,
      image: `${repo}@${pushed}`,
      imageName,
      spec: referenceSpec(),
      templates,
      pull: { auth: {} },
    });
    await expectNothingLeft({ runId: r.evidence.runId });
    expect(r.failure).toBeUndefined();
    expect(r.passed).toBe(true);
    expect(r.digest).toBe(pushed);
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults(),
    );
    // The pulled image is the one that was pushed.
    expect((await docker.getImage(`${repo}@${pushed}`).inspect()).Id).toBe(r.evidence.imageId);

    const file = path.join(makeTempDir('smoke-pins'), 'pins.json');
    const store = await openPinStore(`file:${file}`);
    try {
      const record = await recordSmoke(store, r, { by: 'ci-bot', at: new Date('2026-01-02T03:04:05Z') });
      expect(record).toEqual({
        repository: repo,
        digest: pushed,
        specDigest: r.specDigest,
        passed: true,
        at: '2026-01-02T03:04:05.000Z',
        by: 'ci-bot',
        summary: '6/6 assertions passed',
      });
      expect(await store.smokeRecords(pushed)).toEqual([record]);
    } finally {
      await store.close();
    }
  });

  it('resolves a tag by pulling it and reports the digest the engine pulled', async () => {
    const r = await runSmoke({
      engine,
      image: `${repo}:staging-abc`,
      imageName: `platform-agent-${uniq()}`,
      spec: referenceSpec(),
      templates,
      pull: { auth: {} },
    });
    await expectNothingLeft({ runId: r.evidence.runId });
    expect({ passed: r.passed, digest: r.digest }).toEqual({ passed: true, digest: pushed });
  });

  it('records a failing verdict and renders JUnit with one testcase per assertion', async () => {
    const r = await runSmoke({
      engine,
      image: `${repo}@${pushedStub}`,
      imageName: 'platform-agent',
      spec: referenceSpec(),
      templates,
      pull: { auth: {} },
    });
    await expectNothingLeft({ runId: r.evidence.runId });
    expect({ passed: r.passed, digest: r.digest, code: r.failure?.code }).toEqual({
      passed: false,
      digest: pushedStub,
      code: 'assertion-failed',
    });

    const doc = create(toJUnitXml(r)).end({ format: 'object' }) as {
      testsuites: {
        testsuite: {
          '@tests': string;
          '@failures': string;
          testcase: Array<{ '@name': string; failure?: { '@message': string; '#': string } }>;
        };
      };
    };
    const suite = doc.testsuites.testsuite;
    expect({ tests: suite['@tests'], failures: suite['@failures'] }).toEqual({ tests: '6', failures: '2' });
    expect(suite.testcase.map((t) => ({ name: t['@name'], failed: t.failure !== undefined }))).toEqual(
      referenceResults(['config.yaml is the real identity', '/configs matches template platform-agent']).map(
        (a) => ({
          name: a.name,
          failed: !a.passed,
        }),
      ),
    );
    expect(suite.testcase[0]?.failure?.['@message']).toBe(
      '/configs/config.yaml is 218 bytes, below the minimum of 219',
    );

    const file = path.join(makeTempDir('smoke-pins'), 'pins.json');
    const store = await openPinStore(`file:${file}`);
    try {
      await recordSmoke(store, r, { by: 'ci-bot' });
      const [rec] = await store.smokeRecords(pushedStub);
      expect({ passed: rec?.passed, repository: rec?.repository }).toEqual({
        passed: false,
        repository: repo,
      });
      expect(rec?.summary).toMatch(/^failed assertion-failed: 2 of 6 assertions failed/);
    } finally {
      await store.close();
    }
  });

  it('fails closed when the registry is unreachable, and JUnit shows one failing testcase', async () => {
    const r = await runSmoke({
      engine,
      image: `127.0.0.1:5999/slipway-smoke-test/agent@sha256:${'0'.repeat(64)}`,
      imageName: 'platform-agent',
      spec: referenceSpec(),
      templates,
      pull: { auth: {} },
    });
    await expectNothingLeft({ runId: r.evidence.runId });
    expect(r.passed).toBe(false);
    expect(r.failure?.code).toBe('registry-unreachable');
    expect(r.failure?.message).toMatch(/^cannot pull 127\.0\.0\.1:5999\/.*connection refused/);
    expect(r.digest).toBeNull();

    const doc = create(toJUnitXml(r)).end({ format: 'object' }) as {
      testsuites: { testsuite: { testcase: { '@name': string; failure: { '@type': string } } } };
    };
    expect(doc.testsuites.testsuite.testcase['@name']).toBe(BOOT_TESTCASE);
    expect(doc.testsuites.testsuite.testcase.failure['@type']).toBe('registry-unreachable');
  });

  it('fails a reference the registry does not have as pull-failed', async () => {
    const r = await runSmoke({
      engine,
      image: `${repo}:no-such-tag`,
      imageName: 'platform-agent',
      spec: referenceSpec(),
      templates,
      pull: { auth: {} },
    });
    expect(r.failure?.code).toBe('pull-failed');
    expect(r.failure?.message).toMatch(/^cannot pull .*:no-such-tag: .*(manifest unknown|not found)/);
  });
});
