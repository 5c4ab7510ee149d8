import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ImageRef } from '../../src/core/image-ref.js';
import { copyImage } from '../../src/publish/copy.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { deadPort, RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';
import {
  type BuiltPair,
  buildPair,
  builtOf,
  engine,
  planFor,
  pullId,
  removeImages,
  uid,
} from './fixtures.js';

const settings = { scanOnPush: true, tagMutability: 'MUTABLE' } as const;
let pair: BuiltPair;
const cleanup: string[] = [];

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  pair = await buildPair(`copy-${uid()}`);
});

afterAll(async () => {
  await removeImages(...cleanup, pair.agent.localTag, pair.base.localTag);
});

describe('copyImage on an OCI registry with bearer-token auth', () => {
  let proxy: RegistryProxy;
  const password = `bearer-pw-${uid()}${uid()}`;
  const prefix = `slipway-test/${uid()}`;
  let pushed: Awaited<ReturnType<typeof pushImages>>;

  beforeAll(async () => {
    proxy = await RegistryProxy.start({
      upstream: registryAddr,
      auth: { mode: 'bearer', username: 'robot', password },
    });
    // The images land through the open registry; the copies go through the token-protected proxy.
    pushed = await pushImages(
      planFor('molecule-ai'),
      builtOf(pair),
      await openRegistry(`oci://${registryAddr}/${prefix}`),
      {
        engine,
        repositorySettings: settings,
      },
    );
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('retags within a repository and copies across repositories by blob mount, uploading no layer', async () => {
    const registry = await openRegistry(`oci://${proxy.addr}/${prefix}`, { username: 'robot', password });
    const agent = pushed.images[1];
    if (!agent) throw new Error('agent not pushed');

    const same = await copyImage(
      ImageRef.parse('molecule-ai/molecule-platform-agent:staging-latest'),
      ImageRef.parse('molecule-ai/molecule-platform-agent:prod-latest'),
      registry,
    );
    expect(same).toMatchObject({ digest: agent.digest, changed: true });
    expect(same.target.toString()).toBe(
      `${proxy.addr}/${prefix}/molecule-ai/molecule-platform-agent:prod-latest`,
    );

    const before = proxy.requests.length;
    const across = await copyImage(
      ImageRef.parse(`${proxy.addr}/${prefix}/molecule-ai/molecule-platform-agent@${agent.digest}`),
      ImageRef.parse('mirror/agent:v1'),
      registry,
    );
    expect(across.digest).toBe(agent.digest);
    const requests = proxy.requests.slice(before);
    expect(requests.some((r) => r.method === 'POST' && r.path.includes('?mount=') && r.status === 201)).toBe(
      true,
    );
    // No blob bytes moved: no chunked upload and no blob PUT, only the manifest PUT.
    expect(requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([
      `/v2/${prefix}/mirror/agent/manifests/v1`,
    ]);
    // The token endpoint was used, and with the right credentials.
    expect(requests.some((r) => r.path.startsWith('/token') && r.status === 200)).toBe(true);

    const ref = `${registryAddr}/${prefix}/mirror/agent@${agent.digest}`;
    cleanup.push(ref);
    expect(await pullId(ref)).toBe(pair.agent.id);

    const again = await copyImage(
      ImageRef.parse(`molecule-ai/molecule-platform-agent@${agent.digest}`),
      ImageRef.parse('mirror/agent:v1'),
      registry,
    );
    expect(again.changed).toBe(false);
  });

  it('a retag makes five registry requests: both tags resolved (together), GET, PUT, read back', async () => {
    const open = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const registry = await openRegistry(`oci://${open.addr}/${prefix}`);
      const base = pushed.images[0];
      if (!base) throw new Error('base not pushed');
      const repo = `/v2/${prefix}/molecule-ai/platform/manifests`;
      const result = await copyImage(
        ImageRef.parse('molecule-ai/platform:staging-latest'),
        ImageRef.parse('molecule-ai/platform:retag-count'),
        registry,
      );
      expect(result).toMatchObject({ digest: base.digest, changed: true });
      const seen = open.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
      // The two HEADs are sent at once, so either may reach the registry first.
      expect(seen.slice(0, 2).sort()).toEqual(
        [`HEAD ${repo}/staging-latest 200`, `HEAD ${repo}/retag-count 404`].sort(),
      );
      expect(seen.slice(2)).toEqual([
        `GET ${repo}/${encodeURIComponent(base.digest)} 200`,
        `PUT ${repo}/retag-count 201`,
        `HEAD ${repo}/retag-count 200`,
      ]);
    } finally {
      await open.close();
    }
  });

  it('slipway tag prints the target digest, and a wrong token password is refused without showing it', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = (env: NodeJS.ProcessEnv) => ({
      stdout: (s: string) => out.push(s),
      stderr: (s: string) => err.push(s),
      env,
      cwd: '/nonexistent-dir-for-slipway-tests',
    });
    const code = await main(
      [
        '--json',
        'tag',
        'molecule-ai/platform:staging-latest',
        'molecule-ai/platform:prod',
        '--registry',
        `oci://${proxy.addr}/${prefix}`,
      ],
      io({ SLIPWAY_REGISTRY_USERNAME: 'robot', SLIPWAY_REGISTRY_PASSWORD: password }),
    );
    expect(code, err.join('')).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual({
      ok: true,
      source: `${proxy.addr}/${prefix}/molecule-ai/platform@${pushed.images[0]?.digest}`,
      target: `${proxy.addr}/${prefix}/molecule-ai/platform:prod`,
      digest: pushed.images[0]?.digest,
      changed: true,
    });

    out.length = 0;
    err.length = 0;
    const wrong = `nope-${uid()}${uid()}`;
    const refused = await main(
      [
        'tag',
        'molecule-ai/platform:prod',
        'molecule-ai/platform:prod2',
        '--registry',
        `oci://${proxy.addr}/${prefix}`,
      ],
      io({ SLIPWAY_REGISTRY_USERNAME: 'robot', SLIPWAY_REGISTRY_PASSWORD: wrong }),
    );
    expect(refused).toBe(1);
    expect(err.join('')).toContain('denied (401)');
    expect(out.join('') + err.join('')).not.toContain(wrong);
  });

  it('slipway tag against an unreachable registry exits 3', async () => {
    const err: string[] = [];
    const code = await main(['tag', 'a/b:c', 'a/b:d', '--registry', `oci://127.0.0.1:${await deadPort()}`], {
      stdout: () => {},
      stderr: (s) => err.push(s),
      env: {},
      cwd: '/nonexistent-dir-for-slipway-tests',
    });
    expect(code).toBe(3);
    expect(err.join('')).toContain('is unreachable');
  });
});

describe('copyImage on ECR', () => {
  let ecr: EcrTestServer;
  beforeAll(async () => {
    ecr = await EcrTestServer.start({ registry: registryAddr });
  });
  afterAll(async () => {
    await ecr?.close();
  });

  it('retags by BatchGetImage + PutImage, and a retag to the same digest is a no-op', async () => {
    const root = `slipway-test/${uid()}`;
    const registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', {
      env: {
        AWS_ENDPOINT_URL_ECR: ecr.endpoint,
        AWS_ACCESS_KEY_ID: 'AKIATEST',
        AWS_SECRET_ACCESS_KEY: 'secret-test-key',
      },
    });
    const result = await pushImages(planFor(root), builtOf(pair), registry, {
      engine,
      repositorySettings: settings,
      createRepos: true,
    });
    const base = result.images[0];
    const calls = ecr.calls.length;
    const copied = await copyImage(
      ImageRef.parse(`${root}/platform:staging-latest`),
      ImageRef.parse(`${root}/platform:prod`),
      registry,
    );
    expect(copied).toMatchObject({ digest: base?.digest, changed: true });
    expect(ecr.calls.slice(calls)).toEqual([
      'BatchGetImage',
      'BatchGetImage',
      'BatchGetImage',
      'PutImage',
      'BatchGetImage',
    ]);
    expect(await registry.resolve(`${root}/platform`, 'prod')).toBe(base?.digest);
    // ECR answers ImageAlreadyExistsException for an unchanged PutImage: that is success.
    await registry.putTag(`${root}/platform`, base?.digest ?? '', 'prod');
    expect(ecr.calls.at(-2)).toBe('PutImage');
  });
});
