import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import { templateDigestLabel, templateRefLabel } from '../../src/core/labels.js';
import { openPinStore } from '../../src/promote/open.js';
import type { SmokeReport } from '../../src/smoke/report.js';
import { digestDirectory } from '../../src/sources/tree.js';
import { runCli } from '../support/cli.js';
import { registryAddr, requireServices } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';
import {
  buildFixture,
  docker,
  followProgress,
  referenceSpecJson,
  removeImages,
  templateDir,
  uniq,
} from './support.js';

const run = uniq();
const good = `slipway-smoke-test/agent:cli-good-${run}`;
const stub = `slipway-smoke-test/agent:cli-stub-${run}`;
const labelled = `slipway-smoke-test/agent:cli-labelled-${run}`;
const repo = `${registryAddr}/slipway-test/smoke-cli-agent-${run}`;
const tags = [good, stub, labelled, `${repo}:staging-latest`];
let digest: string;
let pushed: string;
const REF = 'c'.repeat(40);

function manifestDir(withReceipt: boolean): string {
  const dir = makeTempDir('smoke-cli');
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      templates: { 'platform-agent': { source: { path: 'template' } } },
      images: {
        'platform-agent': {
          dockerfile: 'Dockerfile.platform-agent',
          repository: 'molecule-ai/molecule-platform-agent',
          templates: ['platform-agent'],
          smoke: referenceSpecJson,
        },
        platform: { dockerfile: 'Dockerfile', repository: 'molecule-ai/platform' },
      },
    }),
  );
  if (withReceipt) {
    // A receipt as staging writes it, with the staged tree beside it.
    const stagingDir = '.tenant-bundle-deps/workspace-configs-templates';
    const staged = path.join(dir, stagingDir, 'platform-agent');
    mkdirSync(path.dirname(staged), { recursive: true });
    cpSync(templateDir, staged, { recursive: true, verbatimSymlinks: true });
    writeFileSync(
      path.join(dir, stagingDir, 'staged.lock.json'),
      JSON.stringify({
        version: 1,
        stagingDir,
        templates: {
          'platform-agent': {
            name: 'platform-agent',
            source: 'path template',
            ref: REF,
            digest,
            files: 5,
            bytes: 0,
            dir: `${stagingDir}/platform-agent`,
          },
        },
      }),
    );
  }
  return dir;
}

function cli(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return runCli(argv, { cwd, env });
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  digest = (await digestDirectory(templateDir)).digest;
  await buildFixture(good);
  await buildFixture(stub, { FALLBACK: 'stub' });
  await buildFixture(
    labelled,
    {},
    { [templateDigestLabel('platform-agent')]: digest, [templateRefLabel('platform-agent')]: REF },
  );
  await docker.getImage(good).tag({ repo, tag: 'staging-latest' });
  const stream = await docker.getImage(`${repo}:staging-latest`).push({ authconfig: {} });
  const events = await followProgress(stream);
  if (events.some((e) => e.error)) throw new Error('push failed');
  pushed = events.find((e) => e.aux?.Digest)?.aux?.Digest ?? '';
});

afterAll(async () => {
  await removeImages([...tags, `${repo}@${pushed}`]);
});

describe('slipway smoke', () => {
  it('smokes a pushed reference, prints the JSON report, writes JUnit and records the pass', async () => {
    const dir = manifestDir(true);
    const r = await cli(
      ['--json', 'smoke', 'platform-agent', '--ref', `${repo}@${pushed}`, '--junit', 'out/smoke.xml'],
      dir,
      { USER: 'tester' },
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as SmokeReport;
    expect({ passed: report.passed, digest: report.digest, n: report.assertions.length }).toEqual({
      passed: true,
      digest: pushed,
      n: 6,
    });
    expect(report.assertions[4]?.expected).toMatchObject({ digest, ref: REF, from: 'receipt', files: 5 });

    const junit = create(readFileSync(path.join(dir, 'out/smoke.xml'), 'utf8')).end({ format: 'object' }) as {
      testsuites: { testsuite: { '@tests': string; '@failures': string } };
    };
    expect({
      tests: junit.testsuites.testsuite['@tests'],
      failures: junit.testsuites.testsuite['@failures'],
    }).toEqual({
      tests: '6',
      failures: '0',
    });

    // The default pin store is file:<manifest dir>/.slipway/pins.json.
    const store = await openPinStore(`file:${path.join(dir, '.slipway', 'pins.json')}`);
    try {
      const records = await store.smokeRecords(pushed);
      expect(
        records.map((x) => ({ repository: x.repository, passed: x.passed, by: x.by, spec: x.specDigest })),
      ).toEqual([{ repository: repo, passed: true, by: 'tester', spec: report.specDigest }]);
    } finally {
      await store.close();
    }
  });

  it('exits 1 on a stub identity and names the differing file against the staged tree', async () => {
    const dir = manifestDir(true);
    const r = await cli(['smoke', 'platform-agent', '--local', stub, '--junit', 'smoke.xml'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('smoke platform-agent: FAILED');
    expect(r.stdout).toContain(
      'FAIL config.yaml is the real identity: /configs/config.yaml is 218 bytes, below the minimum of 219',
    );
    expect(r.stdout).toMatch(
      /FAIL \/configs matches template platform-agent: .*5 files in the container vs 5 staged; config\.yaml is 218 bytes; differing: config\.yaml/,
    );
    expect(r.stdout).toContain('PASS no credentials under /configs');
    expect(r.stdout).toContain('failed assertion-failed: 2 of 6 assertions failed');
    // A local image has no registry digest: nothing is recorded.
    expect(existsSync(path.join(dir, '.slipway', 'pins.json'))).toBe(false);
    expect(readFileSync(path.join(dir, 'smoke.xml'), 'utf8')).toContain(
      '<failure message="/configs/config.yaml is 218 bytes',
    );
  });

  it("falls back to the image's template labels when nothing was staged here", async () => {
    const passed = await cli(['--json', 'smoke', 'platform-agent', '--local', labelled], manifestDir(false));
    expect(passed.code).toBe(0);
    expect((JSON.parse(passed.stdout) as SmokeReport).assertions[4]?.expected).toEqual({
      template: 'platform-agent',
      digest,
      ref: REF,
      from: 'label',
    });
    // Without a receipt or labels there is no expectation, and the template assertion fails.
    const unlabelled = await cli(['--json', 'smoke', 'platform-agent', '--local', good], manifestDir(false));
    expect(unlabelled.code).toBe(1);
    expect((JSON.parse(unlabelled.stdout) as SmokeReport).assertions[4]?.message).toBe(
      "no expected digest for template platform-agent: it is neither in the staging receipt nor in the image's labels",
    );
  });

  it('refuses --allow-skip in CI, and reports a skip locally', async () => {
    const dir = manifestDir(true);
    const ci = await cli(['smoke', 'platform', '--local', good, '--allow-skip'], dir, { CI: 'true' });
    expect(ci.code).toBe(2);
    expect(ci.stderr).toContain('error: refusing to allow a smoke skip in CI (image platform)');
    // In CI the contract also refuses this manifest's unpinned path source; without CI, the
    // missing spec alone fails the run.
    const noSpec = await cli(['smoke', 'platform', '--local', good], dir);
    expect(noSpec.code).toBe(1);
    expect(noSpec.stdout).toContain('FAIL [no-spec] image platform has no smoke spec in the manifest');
    const local = await cli(['smoke', 'platform', '--local', good, '--allow-skip'], dir);
    expect(local.code).toBe(0);
    expect(local.stdout).toContain('smoke platform: SKIPPED');
  });

  it('exits 3 when the registry is unreachable', async () => {
    const r = await cli(
      [
        'smoke',
        'platform-agent',
        '--ref',
        `127.0.0.1:5999/molecule-ai/molecule-platform-agent@sha256:${'1'.repeat(64)}`,
      ],
      manifestDir(true),
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('FAIL [registry-unreachable] cannot pull 127.0.0.1:5999/');
  });

  it('exits 2 on usage errors', async () => {
    const dir = manifestDir(true);
    expect((await cli(['smoke', 'platform-agent'], dir)).stderr).toContain('smoke needs --ref REFERENCE');
    const unknown = await cli(['smoke', 'nope', '--local', good], dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('hint: images are: platform-agent, platform');
    expect((await cli(['smoke', 'platform-agent', '--local', good, '--ref', `${repo}:x`], dir)).code).toBe(2);
    expect((await cli(['smoke', 'platform-agent', '--local', good, '--timeout', '0'], dir)).code).toBe(2);
  });
});
