/**
 * `slipway status` against the real services: a release into a private registry (deletes
 * enabled), pins and smoke records in PostgreSQL, the same repositories seen through the ECR
 * endpoint; then each flag is provoked the way it happens in production.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPinStore } from '../../src/promote/open.js';
import { openRegistry } from '../../src/publish/open.js';
import type { StatusReport } from '../../src/status/types.js';
import { dropSchema, freshSchemaName } from '../promote/helpers.js';
import { buildImage, uid } from '../publish/fixtures.js';
import { bareClone, makeTemplateRepo, type TemplateRepo, tempDir } from '../stage/helpers.js';
import { runCli } from '../support/cli.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { OwnRegistry } from '../support/own-registry.js';
import { pgUrl, requireServices, rootImage } from '../support/services.js';

const docker = new Docker();
const SHA = 'c0ffee'.padEnd(40, '0');
const prefix = `slipway-test/status-${uid()}`;
const BASE_REPO = `${prefix}/platform`;
const AGENT_REPO = `${prefix}/agent`;

let root: string;
let project: string;
let template: TemplateRepo;
let bare: string;
let registry: OwnRegistry;
let ecr: EcrTestServer;
let schema: string;
let store: string;
let released: { platform: string; agent: string };

const smoke = {
  boot: { command: ['sh', '-c', 'echo status-ready; exec sleep 3600'] },
  ready: { log: 'status-ready' },
  timeoutSeconds: 60,
  assertions: [{ kind: 'path', path: '/configs', type: 'any' }],
};

function manifest(over: { ref?: string; extraImage?: boolean } = {}): string {
  return JSON.stringify({
    version: 1,
    templates: {
      agent: {
        source: { git: `file://${bare}` },
        ref: over.ref ?? template.first,
        required: ['config.yaml'],
      },
    },
    images: {
      platform: {
        dockerfile: 'base/Dockerfile',
        context: 'base',
        repository: BASE_REPO,
        buildArgs: { ROOT_IMAGE: rootImage },
        smoke,
      },
      'platform-agent': {
        dockerfile: 'Dockerfile.agent',
        context: '.',
        repository: AGENT_REPO,
        base: 'platform',
        templates: ['agent'],
        smoke,
      },
      ...(over.extraImage
        ? { never: { dockerfile: 'base/Dockerfile', context: 'base', repository: `${prefix}/never` } }
        : {}),
    },
    pins: { 'platform-agent': { image: 'platform-agent' } },
  });
}

const BASE_DOCKERFILE =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable
  'ARG ROOT_IMAGE\nFROM ${ROOT_IMAGE}\nRUN mkdir -p /configs && echo base > /base-marker\n';

const env = () => ({
  USER: 'tester',
  HOME: root,
  XDG_CACHE_HOME: path.join(root, 'cache'),
  AWS_ENDPOINT_URL_ECR: ecr.endpoint,
  AWS_ACCESS_KEY_ID: 'AKIDSTATUSTEST',
  AWS_SECRET_ACCESS_KEY: 'status-test-secret',
  AWS_REGION: 'us-east-1',
});
const oci = () => `oci://${registry.addr}`;
const ECR_URL = 'ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com';

async function cli(args: string[]) {
  return runCli(args, { cwd: project, env: env() });
}

async function statusOf(extra: string[] = [], url = oci()) {
  const r = await cli([
    '--json',
    'status',
    '--registry',
    url,
    '--env',
    'staging',
    '--pins',
    store,
    '--check',
    ...extra,
  ]);
  if (r.stdout.trim() === '') throw new Error(`status printed nothing (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as StatusReport, stderr: r.stderr };
}

const flagsOf = (report: StatusReport) => report.flags.map((f) => `${f.kind} ${f.image} ${f.subject}`);

async function pushByHand(image: string, ref: string): Promise<string> {
  const [repo, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
  await docker.getImage(image).tag({ repo, tag });
  const stream = await docker.getImage(ref).push({ authconfig: { serveraddress: registry.addr } });
  const events: Array<{ error?: string; aux?: { Digest?: string } }> = await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) =>
      err ? reject(err) : resolve(out),
    ),
  );
  expect(events.filter((e) => e.error)).toEqual([]);
  await docker
    .getImage(ref)
    .remove()
    .catch(() => {});
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`push of ${ref} reported no digest`);
  return digest;
}

beforeAll(async () => {
  await requireServices(['docker', 'postgres', 'rootImage']);
  root = tempDir('status');
  template = makeTemplateRepo(path.join(root, 'template'));
  bare = bareClone(template.work, path.join(root, 'template.git'));
  project = path.join(root, 'project');
  await mkdir(path.join(project, 'base'), { recursive: true });
  await writeFile(path.join(project, 'manifest.json'), manifest());
  await writeFile(path.join(project, 'base', 'Dockerfile'), BASE_DOCKERFILE);
  await writeFile(
    path.join(project, 'Dockerfile.agent'),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable
    'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY .tenant-bundle-deps/workspace-configs-templates/agent /configs\n',
  );
  await writeFile(
    path.join(project, '.dockerignore'),
    '*\n!Dockerfile.agent\n!.tenant-bundle-deps\n.tenant-bundle-deps/**/staged.lock.json\n',
  );
  registry = await OwnRegistry.start();
  ecr = await EcrTestServer.start({ registry: registry.addr });
  schema = freshSchemaName();
  store = `${pgUrl}?schema=${schema}`;
  expect((await cli(['pins', '--store', store, 'migrate'])).code).toBe(0);

  const r = await cli([
    '--json',
    'release',
    '--registry',
    oci(),
    '--env',
    'staging',
    '--sha',
    SHA,
    '--pins',
    store,
    '--promote',
  ]);
  if (r.code !== 0) throw new Error(`release failed (${r.code}): ${r.stderr}`);
  const images = (JSON.parse(r.stdout) as { images: Array<{ name: string; digest: string }> }).images;
  released = {
    platform: images.find((i) => i.name === 'platform')?.digest ?? '',
    agent: images.find((i) => i.name === 'platform-agent')?.digest ?? '',
  };
});

afterAll(async () => {
  await ecr?.close();
  await registry?.stop();
  if (schema) await dropSchema(schema);
  const mine = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  for (const image of mine) {
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => {});
  }
  if (root) await rm(root, { recursive: true, force: true });
});

describe('slipway status', () => {
  it('right after a release: no flag, --check exits 0, and every fact is reported', async () => {
    const { code, report } = await statusOf();
    expect(flagsOf(report)).toEqual([]);
    expect(code).toBe(0);
    const [platform, agent] = report.images;
    expect(platform).toMatchObject({
      name: 'platform',
      repository: {
        name: `${registry.addr}/${BASE_REPO}`,
        exists: true,
        imageCount: 1,
        newestPushSource: 'created',
      },
      latest: { tag: 'staging-latest', digest: released.platform, revision: SHA, smoke: { passed: true } },
      changes: [],
    });
    expect(agent).toMatchObject({
      latest: { digest: released.agent, releaseTag: `staging-${SHA}`, releaseDigest: released.agent },
      current: { templates: [{ name: 'agent', ref: template.first }] },
      pins: [
        {
          runtime: 'platform-agent',
          pinned: { digest: released.agent, forced: false },
          resolves: true,
          smoke: { passed: true },
          equalsLatest: true,
        },
      ],
    });
    expect(agent?.latest?.labels['dev.slipway.dockerfile-digest']).toBe(agent?.current.dockerfileDigest);

    const text = await cli(['status', '--registry', oci(), '--env', 'staging', '--pins', store, '--check']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^platform-agent\s+\S+\/agent \(1 image/m);
    expect(text.stdout).toContain('no flags');
  });

  it('reads the same repositories through the ECR API (DescribeImages) with no flag', async () => {
    for (const repo of [BASE_REPO, AGENT_REPO]) {
      ecr.repositories.set(repo, { scanOnPush: false, tagMutability: 'MUTABLE' });
    }
    const { code, report } = await statusOf([], ECR_URL);
    expect(flagsOf(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.images[1]).toMatchObject({
      repository: { exists: true, imageCount: 1, newestPushSource: 'pushed' },
      latest: { digest: released.agent },
      pins: [{ resolves: true, equalsLatest: true }],
    });
    expect(ecr.calls).toContain('DescribeImages');
  });

  it('EMPTY for an image in the manifest that was never pushed (OCI and ECR)', async () => {
    await writeFile(path.join(project, 'manifest.json'), manifest({ extraImage: true }));
    try {
      for (const url of [oci(), ECR_URL]) {
        const { code, report } = await statusOf([], url);
        expect(flagsOf(report)).toEqual(['EMPTY never repository']);
        expect(report.flags[0]?.reason).toContain('does not exist');
        expect(report.flags[0]?.hint).toContain('slipway release');
        expect(code).toBe(1);
      }
    } finally {
      await writeFile(path.join(project, 'manifest.json'), manifest());
    }
  });

  it('STALE after a Dockerfile change with nothing rebuilt, and for the dependent of the stale base', async () => {
    await writeFile(path.join(project, 'base', 'Dockerfile'), `${BASE_DOCKERFILE}# a merged fix\n`);
    try {
      const { code, report } = await statusOf();
      expect(flagsOf(report)).toEqual([
        'STALE platform staging-latest',
        'STALE platform-agent staging-latest',
      ]);
      expect(report.flags[0]?.reason).toContain('the Dockerfile changed');
      expect(report.flags[1]?.reason).toContain('its base platform is stale');
      expect(code).toBe(1);
    } finally {
      await writeFile(path.join(project, 'base', 'Dockerfile'), BASE_DOCKERFILE);
    }
  });

  it('STALE after a template pin change with nothing rebuilt', async () => {
    await writeFile(path.join(project, 'manifest.json'), manifest({ ref: template.second }));
    try {
      const { code, report } = await statusOf();
      expect(flagsOf(report)).toEqual(['STALE platform-agent staging-latest']);
      expect(report.flags[0]?.reason).toContain(
        `template agent is pinned at ${template.second.slice(0, 12)}`,
      );
      expect(code).toBe(1);
    } finally {
      await writeFile(path.join(project, 'manifest.json'), manifest());
    }
  });

  let handDigest = '';
  it('DRIFT after the moving tag is moved by hand', async () => {
    handDigest = await pushByHand(rootImage, `${registry.addr}/${AGENT_REPO}:staging-latest`);
    const { code, report } = await statusOf();
    expect(flagsOf(report)).toEqual([
      'DRIFT platform-agent staging-latest',
      'UNVERIFIED platform-agent staging-latest',
      'DRIFT platform-agent pin platform-agent',
    ]);
    expect(report.flags[0]?.reason).toContain('not pushed by a release');
    expect(code).toBe(1);

    // Putting the tag back where the release left it clears every flag.
    const reg = await openRegistry(oci(), { env: {} });
    await reg.putTag(AGENT_REPO, released.agent, 'staging-latest');
    expect(flagsOf((await statusOf()).report)).toEqual([]);
  });

  it('DRIFT after a pin is moved to another (smoked) digest', async () => {
    const pins = await openPinStore(pgUrl, { schema });
    try {
      await pins.recordSmoke({
        repository: `${registry.addr}/${AGENT_REPO}`,
        digest: handDigest,
        specDigest: `sha256:${'0'.repeat(64)}`,
        passed: true,
        at: new Date().toISOString(),
        by: 'tester',
        summary: '1/1 assertions passed',
      });
    } finally {
      await pins.close();
    }
    const moved = await cli([
      'pins',
      '--store',
      store,
      'promote',
      'platform-agent',
      `${registry.addr}/${AGENT_REPO}@${handDigest}`,
    ]);
    expect(moved.code).toBe(0);
    const { code, report } = await statusOf();
    expect(flagsOf(report)).toEqual(['DRIFT platform-agent pin platform-agent']);
    expect(report.flags[0]?.reason).toContain(`is pinned to ${handDigest.slice(7, 19)}`);
    expect(code).toBe(1);
  });

  let forcedDigest = '';
  it('UNVERIFIED after a forced promotion', async () => {
    const local = `slipway-test/status-forced:${uid()}`;
    await buildImage(`FROM ${rootImage}\nLABEL forced=${uid()}\n`, local);
    forcedDigest = await pushByHand(local, `${registry.addr}/${AGENT_REPO}:hotfix`);
    await docker
      .getImage(local)
      .remove({ force: true })
      .catch(() => {});
    const forced = await cli([
      'pins',
      '--store',
      store,
      'promote',
      'platform-agent',
      `${registry.addr}/${AGENT_REPO}@${forcedDigest}`,
      '--force',
      '--reason',
      'hotfix',
    ]);
    expect(forced.code).toBe(0);
    const { code, report } = await statusOf();
    expect(flagsOf(report)).toEqual([
      'DRIFT platform-agent pin platform-agent',
      'UNVERIFIED platform-agent pin platform-agent',
    ]);
    expect(report.flags[1]?.reason).toContain('promoted with --force by tester');
    expect(code).toBe(1);
  });

  it('DANGLING after the pinned manifest is deleted from the registry', async () => {
    await registry.deleteManifest(AGENT_REPO, forcedDigest);
    const { code, report } = await statusOf();
    expect(flagsOf(report)).toContain('DANGLING platform-agent pin platform-agent');
    expect(report.images[1]?.pins[0]?.resolves).toBe(false);
    expect(code).toBe(1);
  });

  it('STALE when {env}-latest is older than --max-age; a bad duration is a usage error', async () => {
    const { report } = await statusOf(['--max-age', '1s']);
    expect(flagsOf(report)).toContain('STALE platform staging-latest');
    expect(report.flags.find((f) => f.image === 'platform')?.reason).toContain('more than --max-age');
    const bad = await cli(['status', '--registry', oci(), '--pins', store, '--max-age', 'soon']);
    expect(bad.code).toBe(2);
    expect(await readFile(path.join(project, 'manifest.json'), 'utf8')).toBe(manifest());
  });
});
