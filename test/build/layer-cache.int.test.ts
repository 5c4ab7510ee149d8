/**
 * Layer reuse on a fresh runner: after an image was pushed, every local trace of it is removed
 * (its images and, for BuildKit, its build cache records), one input changes, and the image is
 * built again. With the registry as cache source the unchanged step's layer comes back
 * byte-identical; without it the step runs again. The step writes random bytes, so an equal
 * layer digest can only be a cache hit.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/publish/open.js';
import type { Registry } from '../../src/publish/registry.js';
import { pruneBuildCache } from '../support/build-cache.js';
import { runCli } from '../support/cli.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';

const nonce = randomBytes(6).toString('hex');
const prefix = `slipway-test/cache-${nonce}`;
const docker = new Docker();
let dir: string;
let registry: Registry;

const cli = (args: string[]) =>
  runCli(['-m', path.join(dir, 'manifest.json'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir },
  });

const sha = () => randomBytes(20).toString('hex');

/** Removes every image of this test (the engine is shared: nothing else). */
async function removeTestImages(): Promise<void> {
  const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  for (const i of images)
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => undefined);
}

/** A runner with an empty engine: none of this test's images, none of its build cache. */
async function emptyEngine(): Promise<void> {
  await removeTestImages();
  await pruneBuildCache(docker, nonce);
  expect(await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } })).toEqual([]);
}

/** Layer diff IDs of a local image. */
async function layers(ref: string): Promise<string[]> {
  return (await docker.getImage(ref).inspect()).RootFS.Layers ?? [];
}

/** Layer diff IDs of a pushed image, from its config in the registry. */
async function pushedLayers(repository: string, tag: string): Promise<string[]> {
  const digest = await registry.resolve(repository, tag);
  const config = await registry.configDigest(repository, digest as string);
  const res = await fetch(`http://${registryAddr}/v2/${repository}/blobs/${config}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return ((await res.json()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

function writeProject(builder: string): void {
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      images: {
        app: {
          dockerfile: 'Dockerfile',
          repository: `${prefix}/${builder}`,
          buildArgs: { ROOT_IMAGE: rootImage },
        },
      },
      tags: { immutable: ['{env}-{sha}'], moving: ['{env}-latest'] },
      publish: { registry: `oci://${registryAddr}`, ecr: { scanOnPush: false, tagMutability: 'MUTABLE' } },
    }),
  );
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  registry = await openRegistry(`oci://${registryAddr}`, {});
  dir = mkdtempSync(path.join(tmpdir(), 'slipway-layer-cache-'));
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      'ARG ROOT_IMAGE',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable
      'FROM ${ROOT_IMAGE}',
      `RUN echo slow-step-${nonce} && head -c 300000 /dev/urandom > /big`,
      'COPY changed.txt /changed.txt',
      `RUN echo last-step-${nonce} > /last`,
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'changed.txt'), 'v1\n');
});

afterAll(async () => {
  await removeTestImages();
  await pruneBuildCache(docker, nonce);
  rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['buildkit', ['--buildkit']],
  ['classic', []],
])('a fresh runner rebuilds only what changed (%s builder)', (builder, flags) => {
  const repository = `${prefix}/${builder}`;
  const env = builder === 'buildkit' ? 'bk' : 'cl';

  it('reuses the unchanged step from the registry image, and without it rebuilds the step', async () => {
    writeProject(builder);
    writeFileSync(path.join(dir, 'changed.txt'), 'v1\n');
    expect((await cli(['stage'])).code).toBe(0);
    const first = await cli(['push', '--env', env, '--sha', sha(), ...flags]);
    expect(first.code, first.stderr).toBe(0);
    const published = await pushedLayers(repository, `${env}-latest`);
    // root, the random-bytes step, COPY, the last step
    expect(published).toHaveLength(4);

    await emptyEngine();
    writeFileSync(path.join(dir, 'changed.txt'), 'v2\n');
    const second = await cli(['--json', 'push', '--env', env, '--sha', sha(), ...flags]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`layer cache from ${registryAddr}/${repository}@sha256:`);
    if (builder === 'classic')
      expect(second.stderr).toContain('(the classic builder only uses local images)');
    const rebuilt = await pushedLayers(repository, `${env}-${JSON.parse(second.stdout).sha}`);
    // The slow step came from the registry; the changed COPY and what follows it are new.
    expect(rebuilt.slice(0, 2)).toEqual(published.slice(0, 2));
    expect(rebuilt[2]).not.toBe(published[2]);

    // Without the registry as cache source (a plain build), the same fresh engine reruns the step.
    await emptyEngine();
    writeFileSync(path.join(dir, 'changed.txt'), 'v3\n');
    const plain = await cli(['--json', 'build', '--env', env, '--sha', sha(), ...flags]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).not.toContain('layer cache from');
    const local = await layers(JSON.parse(plain.stdout).images[0].id);
    expect(local[0]).toBe(published[0]);
    expect(local[1]).not.toBe(published[1]);
  });
});
