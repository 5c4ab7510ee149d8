import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageRef } from '../../src/core/image-ref.js';
import { openRegistry } from '../../src/publish/open.js';
import { runCli } from '../support/cli.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { deadPort, RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';
import { removeImages, uid } from './fixtures.js';

const SHA = 'c0ffee'.repeat(7).slice(0, 40);
let dir: string;
/** Image IDs the CLI built (agents first when removed: they sit on the bases). */
const localTags = new Set<string>();

/** Runs the CLI in-process; returns exit code and everything it wrote. */
function run(args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (line: string) => void) {
  return runCli(['-m', path.join(dir, 'manifest.json'), ...args], {
    cwd: dir,
    env,
    ...(onStderr ? { onStderr } : {}),
  });
}

async function writeManifest(registry: string, marker: string, root = 'molecule-ai'): Promise<void> {
  await writeFile(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      images: {
        platform: { dockerfile: 'Dockerfile', repository: `${root}/platform` },
        'platform-agent': {
          dockerfile: 'Dockerfile.platform-agent',
          repository: `${root}/molecule-platform-agent`,
          base: 'platform',
        },
      },
      publish: { registry, ecr: { scanOnPush: false, tagMutability: 'MUTABLE' } },
    }),
  );
  await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\nRUN echo "${marker}" > /base-marker\n`);
}

type PushJson = {
  ok: boolean;
  images: Array<{ name: string; repository: string; digest: string; tags: string[]; pushed: string[] }>;
  error?: { code: string; message: string };
};

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  dir = makeTempDir('push-cli');
  await writeFile(
    path.join(dir, 'Dockerfile.platform-agent'),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a JS one
    'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo agent > /agent-marker\n',
  );
  await writeManifest('oci://127.0.0.1:1/unused', 'stage');
  expect((await run(['stage'])).code).toBe(0);
});

afterAll(async () => {
  await removeImages(...[...localTags].reverse());
  await rm(dir, { recursive: true, force: true });
});

/** Records the built images (their IDs are the pushed manifests' config digests) for removal. */
async function remember(json: PushJson): Promise<void> {
  const registry = await openRegistry(`oci://${registryAddr}`);
  for (const i of json.images) {
    const repository = ImageRef.parse(i.repository).repository;
    const id = await registry.configDigest(repository, i.digest);
    if (id) localTags.add(id);
  }
}

describe('slipway push (OCI, basic auth)', () => {
  let proxy: RegistryProxy;
  const password = `pw-${uid()}${uid()}`;
  const env = () => ({ SLIPWAY_REGISTRY_USERNAME: 'slipway', SLIPWAY_REGISTRY_PASSWORD: password });
  beforeAll(async () => {
    proxy = await RegistryProxy.start({
      upstream: registryAddr,
      auth: { mode: 'basic', username: 'slipway', password },
    });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('pushes every image and tag, prints them, and never prints the password', async () => {
    const prefix = `slipway-test/${uid()}`;
    await writeManifest(`oci://${proxy.addr}/${prefix}`, `cli-${uid()}`);
    const out = await run(
      ['--json', '--log-format', 'ndjson', '-v', 'push', '--env', 'staging', '--sha', SHA],
      env(),
    );
    expect(out.code, out.stderr).toBe(0);
    const json = JSON.parse(out.stdout) as PushJson;
    await remember(json);
    expect(json.images.map((i) => [i.name, i.repository, i.tags])).toEqual([
      ['platform', `${proxy.addr}/${prefix}/molecule-ai/platform`, [`staging-${SHA}`, 'staging-latest']],
      [
        'platform-agent',
        `${proxy.addr}/${prefix}/molecule-ai/molecule-platform-agent`,
        [`staging-${SHA}`, 'staging-latest'],
      ],
    ]);
    const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
    for (const image of json.images) {
      const repo = image.repository.slice(`${proxy.addr}/${prefix}/`.length);
      expect(await direct.resolve(repo, `staging-${SHA}`)).toBe(image.digest);
      expect(await direct.resolve(repo, 'staging-latest')).toBe(image.digest);
    }
    const basic = Buffer.from(`slipway:${password}`).toString('base64');
    for (const text of [out.stdout, out.stderr]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(basic);
    }

    // Text mode lists repository:tag@digest, one per line.
    const again = await run(['push', '--env', 'staging', '--sha', SHA], env());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n')).toEqual(
      json.images.flatMap((i) => i.tags.map((t) => `${i.repository}:${t}@${i.digest}`)),
    );
  });

  it('a wrong password fails before any upload, exit 1, and neither password shows', async () => {
    const prefix = `slipway-test/${uid()}`;
    await writeManifest(`oci://${proxy.addr}/${prefix}`, `cli-${uid()}`);
    const wrong = `wrong-${uid()}${uid()}`;
    const before = proxy.writes().length;
    const out = await run(['--json', 'push', '--env', 'staging', '--sha', SHA], {
      SLIPWAY_REGISTRY_USERNAME: 'slipway',
      SLIPWAY_REGISTRY_PASSWORD: wrong,
    });
    expect(out.code).toBe(1);
    const json = JSON.parse(out.stdout) as PushJson;
    expect(json.error?.code).toBe('REGISTRY_ERROR');
    expect(json.error?.message).toContain('refused the credentials (401)');
    expect(proxy.writes().length).toBe(before);
    for (const text of [out.stdout, out.stderr]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(password);
    }
  });

  it('the registry stopping after the immutable tags exits 1 and leaves staging-latest where it was', async () => {
    const prefix = `slipway-test/${uid()}`;
    await writeManifest(`oci://${proxy.addr}/${prefix}`, `cli-${uid()}`);
    const first = await run(['--json', 'push', '--env', 'staging', '--sha', SHA], env());
    expect(first.code, first.stderr).toBe(0);
    const before = JSON.parse(first.stdout) as PushJson;
    await remember(before);

    await writeManifest(`oci://${proxy.addr}/${prefix}`, `cli-${uid()}`);
    const sha2 = 'beef'.repeat(10);
    const out = await run(
      ['--json', '--log-format', 'ndjson', 'push', '--env', 'staging', '--sha', sha2],
      env(),
      (line) => {
        if (line.includes('"kind":"step-start"') && line.includes('"subject":"moving-tags"')) proxy.down();
      },
    );
    await proxy.up();
    expect(out.code).toBe(1);
    const json = JSON.parse(out.stdout) as PushJson;
    expect(json.error?.code).toBe('PUSH_FAILED');
    expect(json.error?.message).toContain('moving tags were not changed');
    const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
    for (const image of before.images) {
      const repo = image.repository.slice(`${proxy.addr}/${prefix}/`.length);
      expect(await direct.resolve(repo, 'staging-latest')).toBe(image.digest);
      const pushed = await direct.resolve(repo, `staging-${sha2}`);
      expect(pushed).not.toBeNull();
      const id = await direct.configDigest(repo, pushed ?? '');
      if (id) localTags.add(id);
    }
  });

  it('an unreachable registry exits 3', async () => {
    await writeManifest(`oci://127.0.0.1:${await deadPort()}/x`, `cli-${uid()}`);
    const out = await run(['push', '--env', 'staging', '--sha', SHA]);
    expect(out.code).toBe(3);
    expect(out.stderr).toMatch(/error: .*is unreachable/);
  });
});

describe('slipway push (ECR)', () => {
  let ecr: EcrTestServer;
  beforeAll(async () => {
    ecr = await EcrTestServer.start({ registry: registryAddr });
  });
  afterAll(async () => {
    await ecr?.close();
  });
  const env = () => ({
    AWS_ENDPOINT_URL_ECR: ecr.endpoint,
    AWS_ACCESS_KEY_ID: 'AKIATESTSLIPWAY',
    AWS_SECRET_ACCESS_KEY: `aws-secret-${uid()}`,
  });

  it('refuses a missing repository without --create-repos, then creates it with the manifest settings', async () => {
    // ECR has no prefix: unique repositories keep runs apart in the shared registry.
    const root = `slipway-test/${uid()}`;
    await writeManifest('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', `cli-${uid()}`, root);
    const e = env();
    const refused = await run(['--json', 'push', '--env', 'staging', '--sha', SHA], e);
    expect(refused.code).toBe(1);
    const err = (JSON.parse(refused.stdout) as PushJson).error;
    expect(err?.code).toBe('REPOSITORY_NOT_FOUND');
    expect(refused.stderr).toContain(`No ECR repository named ${root}/platform in account 123456789012`);
    expect(refused.stderr).toContain('--create-repos');
    expect(ecr.calls).not.toContain('PutImage');

    const out = await run(
      ['--json', '-v', '--log-format', 'ndjson', 'push', '--create-repos', '--env', 'staging', '--sha', SHA],
      e,
    );
    expect(out.code, out.stderr).toBe(0);
    await remember(JSON.parse(out.stdout) as PushJson);
    expect(Object.fromEntries(ecr.repositories)).toEqual({
      [`${root}/platform`]: { scanOnPush: false, tagMutability: 'MUTABLE' },
      [`${root}/molecule-platform-agent`]: { scanOnPush: false, tagMutability: 'MUTABLE' },
    });
    for (const text of [refused.stdout, refused.stderr, out.stdout, out.stderr]) {
      expect(text).not.toContain(ecr.password);
      expect(text).not.toContain(ecr.token);
      expect(text).not.toContain(e.AWS_SECRET_ACCESS_KEY);
    }
  });
});
