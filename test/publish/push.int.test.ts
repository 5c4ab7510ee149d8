import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectingSink } from '../../src/core/events.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';
import {
  type BuiltPair,
  buildPair,
  builtOf,
  docker,
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
  pair = await buildPair(`push-${uid()}`);
  cleanup.push(pair.agent.localTag, pair.base.localTag);
});

afterAll(async () => {
  // Pulled digest references first, then the images.
  await removeImages(...cleanup.reverse());
});

/** Pulls every pushed digest back and checks it is the image that was built. */
async function expectPulledBack(
  result: Awaited<ReturnType<typeof pushImages>>,
  auth: Record<string, string> = {},
): Promise<void> {
  const expected = { platform: pair.base.id, 'platform-agent': pair.agent.id };
  for (const image of result.images) {
    const ref = `${image.repository}@${image.digest}`;
    cleanup.push(ref);
    expect(await pullId(ref, auth)).toBe(expected[image.name as keyof typeof expected]);
  }
}

describe('pushImages to an OCI registry', () => {
  it('pushes the base then the agent with every tag, and the pushed digests pull back as the built images', async () => {
    const prefix = `slipway-test/${uid()}`;
    const plan = planFor('molecule-ai');
    const tag = `staging-${plan.sha}`;
    const registry = await openRegistry(`oci://${registryAddr}/${prefix}`);
    const sink = collectingSink();

    const result = await pushImages(plan, builtOf(pair), registry, {
      engine,
      repositorySettings: settings,
      sink,
    });

    expect(result).toEqual({
      registry: `oci://${registryAddr}/${prefix}`,
      images: [
        {
          name: 'platform',
          repository: `${registryAddr}/${prefix}/molecule-ai/platform`,
          digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/),
          tags: [tag, 'staging-latest'],
          pushed: [tag, 'staging-latest'],
          skipped: [],
        },
        {
          name: 'platform-agent',
          repository: `${registryAddr}/${prefix}/molecule-ai/molecule-platform-agent`,
          digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/),
          tags: [tag, 'staging-latest'],
          pushed: [tag, 'staging-latest'],
          skipped: [],
        },
      ],
    });
    // Base first: its push started before the agent's.
    const starts = sink.events.filter((e) => e.kind === 'step-start' && e.message.startsWith('pushing'));
    expect(starts.map((e) => ('subject' in e ? e.subject : ''))).toEqual(['platform', 'platform-agent']);

    // A fresh client (no shared state) sees every tag at the pushed digest.
    const fresh = await openRegistry(`oci://${registryAddr}/${prefix}`);
    for (const [i, image] of result.images.entries()) {
      const repo = plan.images[i]?.repository ?? '';
      expect(await fresh.resolve(repo, tag)).toBe(image.digest);
      expect(await fresh.resolve(repo, 'staging-latest')).toBe(image.digest);
    }
    // The registry-named tags the push created are gone again; the built images stay.
    const base = await docker.getImage(pair.base.id).inspect();
    expect(base.RepoTags).toEqual([pair.base.localTag]);

    await expectPulledBack(result);
  });

  it('pushes every immutable tag of an image, not only the first', async () => {
    const prefix = `slipway-test-${uid()}`;
    const base = planFor('molecule-ai');
    const plan = {
      ...base,
      images: base.images.map((i) => ({ ...i, immutableTags: [...i.immutableTags, `build-${base.sha}`] })),
    };
    const registry = await openRegistry(`oci://${registryAddr}/${prefix}`);
    const result = await pushImages(plan, builtOf(pair), registry, {
      engine,
      repositorySettings: settings,
      holdMovingTags: true,
    });
    const tags = [`staging-${plan.sha}`, `build-${plan.sha}`];
    expect(result.images.map((i) => ({ pushed: i.pushed, skipped: i.skipped }))).toEqual([
      { pushed: tags, skipped: [] },
      { pushed: tags, skipped: [] },
    ]);
    for (const [i, image] of result.images.entries()) {
      const repo = plan.images[i]?.repository ?? '';
      expect(await registry.resolve(repo, `build-${plan.sha}`)).toBe(image.digest);
    }
  });

  it('a second push uploads nothing and reports every tag as skipped', async () => {
    const prefix = `slipway-test/${uid()}`;
    const plan = planFor('molecule-ai');
    const first = await pushImages(
      plan,
      builtOf(pair),
      await openRegistry(`oci://${registryAddr}/${prefix}`),
      {
        engine,
        repositorySettings: settings,
      },
    );
    // The second run goes through a recording proxy to the same registry storage.
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const second = await pushImages(
        plan,
        builtOf(pair),
        await openRegistry(`oci://${proxy.addr}/${prefix}`),
        { engine, repositorySettings: settings },
      );
      expect(second.images.map((i) => ({ digest: i.digest, pushed: i.pushed, skipped: i.skipped }))).toEqual(
        first.images.map((i) => ({ digest: i.digest, pushed: [], skipped: i.tags })),
      );
      expect(proxy.writes()).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});

describe('pushImages to ECR', () => {
  let ecr: EcrTestServer;
  beforeAll(async () => {
    ecr = await EcrTestServer.start({ registry: registryAddr });
  });
  afterAll(async () => {
    await ecr?.close();
  });

  it('creates the repositories, pushes through the ECR token and proxy endpoint, and pulls back the digests', async () => {
    const root = `slipway-test/${uid()}`;
    const plan = planFor(root);
    const tag = `staging-${plan.sha}`;
    const env = {
      AWS_ENDPOINT_URL_ECR: ecr.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIATESTSLIPWAY',
      AWS_SECRET_ACCESS_KEY: 'test-secret-key-slipway',
    };
    const registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', {
      env,
      retries: { attempts: 2 },
    });
    expect(registry.imageName('x/y').toString()).toBe(`${registryAddr}/x/y`);

    const result = await pushImages(plan, builtOf(pair), registry, {
      engine,
      repositorySettings: { scanOnPush: false, tagMutability: 'MUTABLE' },
      createRepos: true,
    });

    expect(Object.fromEntries(ecr.repositories)).toEqual({
      [`${root}/platform`]: { scanOnPush: false, tagMutability: 'MUTABLE' },
      [`${root}/molecule-platform-agent`]: { scanOnPush: false, tagMutability: 'MUTABLE' },
    });
    expect(result.images.map((i) => [i.repository, i.pushed])).toEqual([
      [`${registryAddr}/${root}/platform`, [tag, 'staging-latest']],
      [`${registryAddr}/${root}/molecule-platform-agent`, [tag, 'staging-latest']],
    ]);
    // The moving tag moved by BatchGetImage + PutImage, not by the engine.
    expect(ecr.calls.filter((c) => c === 'PutImage')).toHaveLength(2);
    for (const [i, image] of result.images.entries()) {
      const repo = plan.images[i]?.repository ?? '';
      expect(await registry.resolve(repo, tag)).toBe(image.digest);
      expect(await registry.resolve(repo, 'staging-latest')).toBe(image.digest);
    }
    await expectPulledBack(result, { ...(await registry.engineAuth()) } as Record<string, string>);

    const again = await pushImages(plan, builtOf(pair), registry, { engine, repositorySettings: settings });
    expect(again.images.map((i) => [i.digest, i.pushed, i.skipped])).toEqual(
      result.images.map((i) => [i.digest, [], i.tags]),
    );
  });
});
