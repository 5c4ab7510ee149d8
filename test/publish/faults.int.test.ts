import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor, isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { deadPort, RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';
import { type BuiltPair, buildPair, builtOf, engine, planFor, removeImages, uid } from './fixtures.js';

const settings = { scanOnPush: true, tagMutability: 'MUTABLE' } as const;
const fast = { attempts: 2, minDelayMs: 10 };
let v1: BuiltPair;
let v2: BuiltPair;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  v1 = await buildPair(`faults-v1-${uid()}`);
  v2 = await buildPair(`faults-v2-${uid()}`);
});

afterAll(async () => {
  await removeImages(v1.agent.localTag, v1.base.localTag, v2.agent.localTag, v2.base.localTag);
});

async function rejection(p: Promise<unknown>): Promise<SlipwayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSlipwayError(err)) throw new Error(`expected a SlipwayError, got ${String(err)}`);
  return err;
}

describe('moving tags are all-or-nothing', () => {
  it('a registry that stops after the immutable tags leaves every moving tag where it was', async () => {
    const prefix = `slipway-test/${uid()}`;
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
      const first = await pushImages(planFor('molecule-ai'), builtOf(v1), direct, {
        engine,
        repositorySettings: settings,
      });

      const plan = planFor('molecule-ai');
      const sink = collectingSink();
      const err = await rejection(
        pushImages(
          plan,
          builtOf(v2),
          await openRegistry(`oci://${proxy.addr}/${prefix}`, { retries: fast }),
          {
            engine,
            repositorySettings: settings,
            sink: (e) => {
              sink(e);
              if (e.kind === 'step-start' && e.subject === 'moving-tags') proxy.down();
            },
          },
        ),
      );

      expect(err.code).toBe('PUSH_FAILED');
      expect(exitCodeFor(err.code)).toBe(1);
      expect(err.message).toMatch(
        /^platform \(127\.0\.0\.1:\d+\/.*:staging-latest\): .*unreachable.*; moving tags were not changed$/,
      );
      for (const [i, image] of plan.images.entries()) {
        // The new immutable tags are there; the moving tags still name the first push.
        expect(await direct.resolve(image.repository, `staging-${plan.sha}`)).not.toBeNull();
        expect(await direct.resolve(image.repository, 'staging-latest')).toBe(first.images[i]?.digest);
      }
    } finally {
      await proxy.close();
    }
  });

  it('a moving tag that fails after another moved restores the moved one', async () => {
    const prefix = `slipway-test/${uid()}`;
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
      const first = await pushImages(planFor('molecule-ai'), builtOf(v1), direct, {
        engine,
        repositorySettings: settings,
      });
      proxy.fail({
        method: 'PUT',
        path: /molecule-platform-agent\/manifests\/staging-latest$/,
        status: 500,
        times: 100,
      });

      const plan = planFor('molecule-ai');
      const err = await rejection(
        pushImages(
          plan,
          builtOf(v2),
          await openRegistry(`oci://${proxy.addr}/${prefix}`, { retries: fast }),
          {
            engine,
            repositorySettings: settings,
          },
        ),
      );

      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).toContain('platform-agent (');
      expect(err.message).toContain('moving tags were not changed (1 moved tag was restored)');
      expect(await direct.resolve('molecule-ai/platform', 'staging-latest')).toBe(first.images[0]?.digest);
      expect(await direct.resolve('molecule-ai/molecule-platform-agent', 'staging-latest')).toBe(
        first.images[1]?.digest,
      );
      // Bounded retries: two attempts, no more.
      expect(
        proxy.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('agent/manifests/staging-latest')),
      ).toHaveLength(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('registry failures', () => {
  it('a registry unreachable from the start is REGISTRY_UNREACHABLE (exit 3) and nothing is pushed', async () => {
    const port = await deadPort();
    const sink = collectingSink();
    const err = await rejection(
      pushImages(
        planFor('molecule-ai'),
        builtOf(v1),
        await openRegistry(`oci://127.0.0.1:${port}/x`, { retries: fast }),
        {
          engine,
          repositorySettings: settings,
          sink,
        },
      ),
    );
    expect(err.code).toBe('REGISTRY_UNREACHABLE');
    expect(exitCodeFor(err.code)).toBe(3);
    expect(err.message).toContain(`http://127.0.0.1:${port} is unreachable`);
    expect(err.message).toContain('nothing was pushed');
    expect(sink.events.some((e) => e.kind === 'step-start')).toBe(false);
  });

  it('a transient 503 on a manifest PUT is retried (honouring Retry-After) and the push succeeds', async () => {
    const prefix = `slipway-test/${uid()}`;
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      proxy.fail({
        method: 'PUT',
        path: /platform\/manifests\/staging-latest$/,
        status: 503,
        times: 1,
        headers: { 'retry-after': '1' },
      });
      const plan = planFor('molecule-ai');
      const started = Date.now();
      const result = await pushImages(
        plan,
        builtOf(v1),
        await openRegistry(`oci://${proxy.addr}/${prefix}`, { retries: { attempts: 4, minDelayMs: 10 } }),
        { engine, repositorySettings: settings },
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      const puts = proxy.requests.filter(
        (r) => r.method === 'PUT' && r.path.endsWith('/platform/manifests/staging-latest'),
      );
      expect(puts.map((r) => r.status)).toEqual([503, 201]);
      const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
      expect(await direct.resolve('molecule-ai/platform', 'staging-latest')).toBe(result.images[0]?.digest);
    } finally {
      await proxy.close();
    }
  });
});

describe('ECR repositories', () => {
  let ecr: EcrTestServer;
  let proxy: RegistryProxy;
  beforeAll(async () => {
    proxy = await RegistryProxy.start({ upstream: registryAddr });
    ecr = await EcrTestServer.start({ registry: registryAddr, proxyEndpoint: `http://${proxy.addr}` });
  });
  afterAll(async () => {
    await ecr?.close();
    await proxy?.close();
  });
  const env = () => ({
    AWS_ENDPOINT_URL_ECR: ecr.endpoint,
    AWS_ACCESS_KEY_ID: 'AKIATESTSLIPWAY',
    AWS_SECRET_ACCESS_KEY: 'test-secret-key-slipway',
  });

  it('a missing repository without createRepos fails before anything is pushed, naming repository, account and flag', async () => {
    const root = `slipway-test/${uid()}`;
    const plan = planFor(root);
    // The base's repository exists; the agent's does not: the check must still precede every push.
    ecr.repositories.set(`${root}/platform`, settings);
    const registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', { env: env() });
    const before = proxy.requests.length;

    const err = await rejection(
      pushImages(plan, builtOf(v1), registry, { engine, repositorySettings: settings }),
    );

    expect(err.code).toBe('REPOSITORY_NOT_FOUND');
    expect(err.message).toContain(
      `No ECR repository named ${root}/molecule-platform-agent in account 123456789012`,
    );
    expect(err.hint).toContain('--create-repos');
    expect(proxy.requests.slice(before)).toEqual([]);
    expect(ecr.calls).not.toContain('PutImage');
  });

  it('createRepos creates missing repositories with the manifest settings', async () => {
    const root = `slipway-test/${uid()}`;
    const registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', { env: env() });
    const result = await pushImages(planFor(root), builtOf(v1), registry, {
      engine,
      repositorySettings: { scanOnPush: false, tagMutability: 'IMMUTABLE' },
      createRepos: true,
    });
    expect(ecr.repositories.get(`${root}/platform`)).toEqual({
      scanOnPush: false,
      tagMutability: 'IMMUTABLE',
    });
    expect(ecr.repositories.get(`${root}/molecule-platform-agent`)).toEqual({
      scanOnPush: false,
      tagMutability: 'IMMUTABLE',
    });
    expect(result.images.every((i) => i.pushed.length === 2)).toBe(true);
  });
});
