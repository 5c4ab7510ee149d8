import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { LABELS } from '../../src/core/labels.js';
import type { Plan } from '../../src/plan/types.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';
import { buildImage, engine, planFor, removeImages, uid } from './fixtures.js';

const settings = { scanOnPush: false, tagMutability: 'MUTABLE' } as const;
const run = uid();
const tags: string[] = [];
let published: string;
let otherInputs: string;
let sameInputs: string;

/** Builds a one-layer image carrying `marker` (so its ID is its own) and the input-digest label. */
async function imageWith(marker: string, inputs: string): Promise<string> {
  const tag = `slipway-test/immutable:${run}-${marker}`;
  tags.push(tag);
  return buildImage(
    `FROM slipway.local/root:busybox\nRUN echo "${run} ${marker}" > /marker\nLABEL ${LABELS.inputDigest}=${inputs}\n`,
    tag,
  );
}

/** A plan for one image in `molecule-ai/immutable`, with tags `staging-<sha>` and `staging-latest`. */
function onePlan(): Plan {
  const plan = planFor('molecule-ai');
  const first = plan.images[0];
  if (!first) throw new Error('planFor returned no image');
  return { ...plan, images: [{ ...first, repository: 'molecule-ai/immutable' }] };
}

/** Publishes `published` under a fresh prefix and returns the plan, the registry and the digest. */
async function publishFirst() {
  const prefix = `slipway-test/${uid()}`;
  const plan = onePlan();
  const registry = await openRegistry(`oci://${registryAddr}/${prefix}`);
  const first = await pushImages(plan, { platform: { id: published } }, registry, {
    engine,
    repositorySettings: settings,
  });
  const digest = first.images[0]?.digest ?? '';
  expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
  return { prefix, plan, registry, digest, immutable: `staging-${plan.sha}` };
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  published = await imageWith('published', `sha256:${'1'.repeat(64)}`);
  otherInputs = await imageWith('other', `sha256:${'2'.repeat(64)}`);
  // Same inputs, another build: a different image ID (its content differs, as a rebuild's timestamps would).
  sameInputs = await imageWith('rebuilt', `sha256:${'1'.repeat(64)}`);
});

afterAll(async () => {
  await removeImages(...tags);
});

describe('immutable tags are immutable', () => {
  it('refuses to overwrite an immutable tag naming an image built from other inputs, naming both digests; nothing is written', async () => {
    const { prefix, plan, registry, digest, immutable } = await publishFirst();
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const sink = collectingSink();
      const err = await pushImages(
        plan,
        { platform: { id: otherInputs } },
        await openRegistry(`oci://${proxy.addr}/${prefix}`),
        { engine, repositorySettings: settings, sink },
      ).catch((e: unknown) => e);

      expect(isSlipwayError(err, 'IMMUTABLE_TAG_CONFLICT')).toBe(true);
      const e = err as Error & { exitCode: number; hint: string; resource: string };
      expect(e.exitCode).toBe(1);
      expect(e.message).toContain(`${proxy.addr}/${prefix}/molecule-ai/immutable:${immutable}`);
      expect(e.message).toContain(`already names ${digest}`);
      expect(e.message).toContain(`not the local image ${otherInputs}`);
      expect(e.message).toContain('nothing was pushed; no tag was changed');
      expect(e.hint).toContain('--overwrite-immutable');
      expect(proxy.writes()).toEqual([]);
      expect(sink.events.filter((ev) => ev.kind === 'step-start')).toEqual([]);
    } finally {
      await proxy.close();
    }
    // Neither the immutable nor the moving tag moved.
    expect(await registry.resolve(plan.images[0]?.repository ?? '', immutable)).toBe(digest);
    expect(await registry.resolve(plan.images[0]?.repository ?? '', 'staging-latest')).toBe(digest);
  });

  it('reuses the published digest of an image built from the same inputs and pushes nothing', async () => {
    const { prefix, plan, registry, digest, immutable } = await publishFirst();
    const proxy = await RegistryProxy.start({ upstream: registryAddr });
    try {
      const sink = collectingSink();
      const result = await pushImages(
        plan,
        { platform: { id: sameInputs } },
        await openRegistry(`oci://${proxy.addr}/${prefix}`),
        { engine, repositorySettings: settings, sink },
      );
      expect(result.images.map((i) => ({ digest: i.digest, pushed: i.pushed, skipped: i.skipped }))).toEqual([
        { digest, pushed: [], skipped: [immutable, 'staging-latest'] },
      ]);
      // No blob upload and no manifest PUT reached the registry.
      expect(proxy.writes()).toEqual([]);
      expect(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'))).toEqual([]);
      expect(sink.events).toContainEqual(
        expect.objectContaining({
          kind: 'step-done',
          skipped: true,
          message: expect.stringContaining(`@${digest} already published from the same inputs`),
        }),
      );
    } finally {
      await proxy.close();
    }
    expect(await registry.resolve(plan.images[0]?.repository ?? '', immutable)).toBe(digest);
  });

  it('overwrites with overwriteImmutable, and logs a warning naming both digests', async () => {
    const { plan, registry, digest, immutable } = await publishFirst();
    const sink = collectingSink();
    const result = await pushImages(plan, { platform: { id: otherInputs } }, registry, {
      engine,
      repositorySettings: settings,
      sink,
      overwriteImmutable: true,
    });
    const now = result.images[0]?.digest ?? '';
    expect(now).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(now).not.toBe(digest);
    expect(result.images[0]?.pushed).toEqual([immutable, 'staging-latest']);
    const repo = plan.images[0]?.repository ?? '';
    expect(await registry.resolve(repo, immutable)).toBe(now);
    expect(await registry.resolve(repo, 'staging-latest')).toBe(now);
    const warnings = sink.events.filter((e) => e.kind === 'log' && e.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      message: expect.stringMatching(
        new RegExp(
          `overwriting immutable tag \\(--overwrite-immutable\\): .*:${immutable} already names ${digest}.*not the local image ${otherInputs}`,
        ),
      ),
    });
    expect(sink.events).toContainEqual(
      expect.objectContaining({
        kind: 'step-done',
        message: `${registry.imageName(repo).withTag(immutable)}@${now} (overwrote ${digest})`,
      }),
    );
  });
});
