/**
 * The build stage against the real engine: the reference Dockerfiles build `platform`, then
 * `platform-agent` FROM exactly that image; the agent boots and installs its identity.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImages } from '../../src/build/build.js';
import { SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { LABELS, templateDigestLabel, templateRefLabel } from '../../src/core/labels.js';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { type LoadedManifest, loadManifest } from '../../src/manifest/load.js';
import { makePlan } from '../../src/plan/plan.js';
import type { Plan } from '../../src/plan/types.js';
import { preflight } from '../../src/preflight/preflight.js';
import type { StagingReceipt } from '../../src/stage/receipt.js';
import { requireServices, rootImage } from '../support/services.js';
import { REF, repoRoot, stagedRepo, writeTree } from './layout.js';

const docker = new Docker();
const engine = dockerEngine();
const run = randomBytes(4).toString('hex');
const SHA = randomBytes(20).toString('hex');
const cleanup: Array<() => Promise<unknown>> = [];

function removeImage(id: string) {
  return docker
    .getImage(id)
    .remove({ force: true })
    .catch(() => undefined);
}

beforeAll(async () => {
  await requireServices(['docker', 'rootImage']);
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('build: platform then platform-agent FROM the base built in the same run', () => {
  let loaded: LoadedManifest;
  let receipt: StagingReceipt;
  let plan: Plan;
  let first: Record<string, BuiltImage>;

  beforeAll(async () => {
    ({ loaded, receipt } = await stagedRepo(run));
    await preflight(loaded);
    plan = await makePlan(loaded, { env: 'test', sha: SHA, receipt });
    first = await buildImages(loaded, plan, { engine });
    for (const b of Object.values(first)) cleanup.push(() => removeImage(b.id));
  });

  it('chains the agent on the exact base image: its layers start with the base layers, labels say so', async () => {
    const base = await docker.getImage(first.platform?.id ?? '').inspect();
    const agent = await docker.getImage(first['platform-agent']?.id ?? '').inspect();
    expect(agent.RootFS.Layers?.slice(0, base.RootFS.Layers?.length)).toEqual(base.RootFS.Layers);
    expect((agent.RootFS.Layers?.length ?? 0) > (base.RootFS.Layers?.length ?? 0)).toBe(true);
    const labels = agent.Config.Labels ?? {};
    expect({
      ref: labels[templateRefLabel('platform-agent')],
      digest: labels[templateDigestLabel('platform-agent')],
      baseDigest: labels[LABELS.baseDigest],
      inputDigest: labels[LABELS.inputDigest],
      revision: labels[LABELS.revision],
      image: labels[LABELS.image],
    }).toEqual({
      ref: REF,
      digest: receipt.templates['platform-agent']?.digest,
      baseDigest: base.Id,
      inputDigest: first['platform-agent']?.inputDigest,
      revision: SHA,
      image: 'platform-agent',
    });
    expect(first['platform-agent']?.localTag).toBe(
      `slipway-test/molecule-platform-agent-${run}:slipway-${first['platform-agent']?.inputDigest.slice(7, 19)}`,
    );
    expect((await docker.getImage(first['platform-agent']?.localTag ?? '').inspect()).Id).toBe(agent.Id);
  });

  it('boots with an empty volume at /configs and installs the template config.yaml there', async () => {
    const volume = `slipway-test-configs-${run}`;
    await docker.createVolume({ Name: volume });
    const container = await docker.createContainer({
      Image: first['platform-agent']?.id ?? '',
      HostConfig: { Binds: [`${volume}:/configs`] },
    });
    cleanup.push(async () => {
      await container.remove({ force: true }).catch(() => undefined);
      await docker
        .getVolume(volume)
        .remove()
        .catch(() => undefined);
    });
    await container.start();
    let logs = '';
    for (let i = 0; i < 50 && !logs.includes('platform-agent ready'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    }
    expect(logs).toContain('platform-agent ready (identity: platform-agent');
    const exec = await container.exec({ Cmd: ['cat', '/configs/config.yaml'], AttachStdout: true });
    const stream = await exec.start({});
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const stdout = { write: (c: Buffer) => chunks.push(c) } as unknown as NodeJS.WritableStream;
      docker.modem.demuxStream(stream, stdout, stdout);
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    expect(Buffer.concat(chunks).toString('utf8')).toBe(
      readFileSync(path.join(repoRoot, 'templates/platform-agent/config.yaml'), 'utf8'),
    );
  });

  it('a second build reports up to date and returns the same IDs', async () => {
    const sink = collectingSink();
    const second = await buildImages(loaded, plan, { engine, sink });
    expect(second).toEqual({
      platform: { ...first.platform, reused: true },
      'platform-agent': { ...first['platform-agent'], reused: true },
    });
    expect(
      sink.events
        .filter((e) => e.kind === 'step-done')
        .map((e) => [e.subject, e.kind === 'step-done' && e.skipped]),
    ).toEqual([
      ['platform', true],
      ['platform-agent', true],
    ]);
  });

  it('--no-cache with BuildKit rebuilds both images and still chains the agent on the new base', async () => {
    const sink = collectingSink();
    const rebuilt = await buildImages(loaded, plan, { engine, buildkit: true, noCache: true, sink });
    for (const b of Object.values(rebuilt)) cleanup.push(() => removeImage(b.id));
    expect([rebuilt.platform?.reused, rebuilt['platform-agent']?.reused]).toEqual([false, false]);
    expect(rebuilt.platform?.id).not.toBe(first.platform?.id);
    const base = await docker.getImage(rebuilt.platform?.id ?? '').inspect();
    const agent = await docker.getImage(rebuilt['platform-agent']?.id ?? '').inspect();
    expect(agent.RootFS.Layers?.slice(0, base.RootFS.Layers?.length)).toEqual(base.RootFS.Layers);
    expect(agent.Config.Labels?.[LABELS.baseDigest]).toBe(base.Id);
    expect(sink.events.some((e) => e.kind === 'output' && e.subject === 'platform-agent')).toBe(true);
  });
});

describe('build failures', () => {
  it('a failing RUN is BUILD_FAILED naming the step, and leaves no stopped container behind', async () => {
    const marker = `slipway-fail-${run}`;
    const dir = writeTree({
      Dockerfile: `ARG ROOT_IMAGE\nFROM \${ROOT_IMAGE}\nLABEL dev.slipway.test-run=${marker}\nRUN echo "about to fail" && exit 7\n`,
      'manifest.json': JSON.stringify({
        version: 1,
        images: {
          broken: {
            dockerfile: 'Dockerfile',
            repository: `slipway-test/broken-${run}`,
            buildArgs: { ROOT_IMAGE: rootImage },
          },
        },
      }),
    });
    const loaded = await loadManifest(path.join(dir, 'manifest.json'));
    const plan = await makePlan(loaded, {
      env: 'test',
      sha: SHA,
      receipt: { version: 1, stagingDir: loaded.manifest.stagingDir, templates: {} },
    });
    const leftovers = () =>
      docker.listContainers({ all: true, filters: { label: [`dev.slipway.test-run=${marker}`] } });
    // The steps before the failure stay in the engine's cache as untagged images: remove ours.
    cleanup.push(async () => {
      const cached = await docker.listImages({
        all: true,
        filters: { label: [`dev.slipway.test-run=${marker}`] },
      });
      for (const image of cached) await removeImage(image.Id);
    });
    const sink = collectingSink();
    const err = await buildImages(loaded, plan, { engine, sink }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SlipwayError);
    const e = err as SlipwayError;
    expect([e.code, e.resource]).toEqual(['BUILD_FAILED', 'broken']);
    expect(e.message).toMatch(
      /^build broken failed at Step 4\/\d+ : RUN echo "about to fail" && exit 7: .*returned a non-zero code: 7/,
    );
    expect(e.message).toContain('about to fail');
    expect(sink.events.some((ev) => ev.kind === 'output' && ev.line === 'about to fail')).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('refuses a FROM image the engine does not have instead of pulling it', async () => {
    const dir = writeTree({
      Dockerfile: 'FROM slipway.local/never-pulled:nope\nRUN true\n',
      'manifest.json': JSON.stringify({
        version: 1,
        images: { nopull: { dockerfile: 'Dockerfile', repository: `slipway-test/nopull-${run}` } },
      }),
    });
    const loaded = await loadManifest(path.join(dir, 'manifest.json'));
    const plan = await makePlan(loaded, {
      env: 'test',
      sha: SHA,
      receipt: { version: 1, stagingDir: loaded.manifest.stagingDir, templates: {} },
    });
    const err = await buildImages(loaded, plan, { engine }).then(
      () => null,
      (e: unknown) => e,
    );
    expect([(err as SlipwayError).code, (err as SlipwayError).message]).toEqual([
      'BUILD_FAILED',
      'Dockerfile:1: FROM slipway.local/never-pulled:nope is not in the local engine, and slipway never pulls',
    ]);
  });
});
