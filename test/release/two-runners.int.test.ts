/**
 * One plan published by two runners, through the CLI as a fan-out workflow runs it: runner A
 * pushes and smokes `platform`; every local image of the test is removed (runner B's engine is
 * empty); runner B builds `platform-agent` from the plan, pulling its base by the digest pushed
 * for the plan; the finishing step moves the moving tags and the pin once. The two runners have
 * separate working directories and template caches; the registry (behind a recording proxy) and
 * the pin store are what they share.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectingSink } from '../../src/core/events.js';
import { LABELS } from '../../src/core/labels.js';
import { Redactor } from '../../src/core/redact.js';
import { parsePlan } from '../../src/plan/plan.js';
import { FilePinStore } from '../../src/promote/file-store.js';
import { openRegistry } from '../../src/publish/open.js';
import type { Registry } from '../../src/publish/registry.js';
import { finishRelease, type VerdictSource } from '../../src/release/finish.js';
import { runCli } from '../support/cli.js';
import { type TempProject, tempProject } from '../support/project.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';

const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/fanout-${run}`;
const docker = new Docker();
const temps: string[] = [];
const temp = (name: string) => {
  const d = mkdtempSync(path.join(tmpdir(), `slipway-${name}-`));
  temps.push(d);
  return d;
};

let proxy: RegistryProxy;
let registry: Registry;
let project: TempProject;
let runnerA: string;
let runnerB: string;

/** The environment of one runner: its own home and template cache. */
function runnerEnv(name: string): NodeJS.ProcessEnv {
  const home = temp(`home-${name}`);
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CACHE_HOME: path.join(home, '.cache'),
    SLIPWAY_ACTOR: `runner-${name}`,
  };
}
const envs: Record<string, NodeJS.ProcessEnv> = {};
const cli = (runner: 'A' | 'B', args: string[]) => {
  const dir = runner === 'A' ? runnerA : runnerB;
  return runCli(['-m', path.join(dir, 'manifest.json'), ...args], { cwd: dir, env: envs[runner] ?? {} });
};

/** Removes every image of this test from the engine (the tags it pushed and the local build tags). */
async function removeTestImages(): Promise<number> {
  const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  // Dependents first: the agent sits on the platform image.
  const isAgent = (i: Docker.ImageInfo) =>
    [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].join().includes('agent');
  images.sort((a, b) => Number(isAgent(b)) - Number(isAgent(a)));
  for (const i of images)
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => undefined);
  return images.length;
}

/** The layer digests of a pushed manifest, read from the registry itself. */
async function layersOf(repository: string, digest: string): Promise<string[]> {
  const res = await fetch(`http://${registryAddr}/v2/${repository}/manifests/${digest}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    signal: AbortSignal.timeout(10_000),
  });
  const manifest = (await res.json()) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

const platformRepo = `${prefix}/platform`;
const agentRepo = `${prefix}/molecule-platform-agent`;
/** Manifest PUTs of a tag through the proxy (the engine's pushes and Slipway's tag moves). */
const manifestPuts = (repository: string, tag: string) =>
  proxy.requests.filter((r) => r.method === 'PUT' && r.path === `/v2/${repository}/manifests/${tag}`);

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  proxy = await RegistryProxy.start({ upstream: registryAddr });
  registry = await openRegistry(`oci://${registryAddr}`, {});
  project = tempProject(prefix);
  project.writeManifest((m) => {
    m.publish.registry = `oci://${proxy.addr}`;
  });
  project.commit('manifest');
  runnerA = project.dir;
  // Runner B has its own checkout of the same commit.
  runnerB = temp('runner-b');
  cpSync(project.dir, runnerB, { recursive: true });
  envs.A = runnerEnv('A');
  envs.B = runnerEnv('B');
});

afterAll(async () => {
  await removeTestImages();
  await proxy?.close();
  project?.remove();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

// Runner B builds with either builder: the base is chained by `registry/repo@digest` for both.
describe.each([
  ['classic', 'fancl', []],
  ['buildkit', 'fanbk', ['--buildkit']],
])('one plan, two runners (runner B: %s builder)', (_builder, env, flags) => {
  const sha = randomBytes(20).toString('hex');
  let pinsFile: string;
  /** The image ID runner A built the base as. */
  let baseIdOnA = '';
  beforeAll(() => {
    pinsFile = path.join(temp('shared-pins'), 'pins.json');
  });
  const planA = () => path.join(runnerA, 'plan.json');

  it('runner A plans (with the matrix) and publishes and smokes the base', async () => {
    expect((await cli('A', ['stage'])).code).toBe(0);
    const planned = await cli('A', ['--json', 'plan', '--env', env, '--sha', sha, '--matrix']);
    expect(planned.code, planned.stderr).toBe(0);
    const doc = JSON.parse(planned.stdout);
    expect(doc.matrix.levels).toEqual([
      { level: 0, include: [{ image: 'platform', level: 0 }] },
      { level: 1, include: [{ image: 'platform-agent', level: 1 }] },
    ]);
    writeFileSync(planA(), planned.stdout);
    // The plan travels to runner B as a file (an artifact in CI).
    writeFileSync(path.join(runnerB, 'plan.json'), planned.stdout);

    const built = await cli('A', ['--json', 'build', 'platform', '--plan', 'plan.json']);
    expect(built.code, built.stderr).toBe(0);
    baseIdOnA = JSON.parse(built.stdout).images[0].id;
    const pushed = await cli('A', ['--json', 'push', 'platform', '--plan', 'plan.json']);
    expect(pushed.code, pushed.stderr).toBe(0);
    const result = JSON.parse(pushed.stdout);
    // Only the named image is published; the moving tag waits for the finishing step.
    expect(result.images.map((i: { name: string; tags: string[] }) => [i.name, i.tags])).toEqual([
      ['platform', [`${env}-${sha}`]],
    ]);
    expect(await registry.resolve(platformRepo, `${env}-latest`)).toBeNull();

    const smoked = await cli('A', ['smoke', 'platform', '--plan', 'plan.json', '--pins', `file:${pinsFile}`]);
    expect(smoked.code, smoked.stderr).toBe(0);
    expect(smoked.stderr).toContain('recorded a pass');
  });

  it('the finishing step refuses while an image of the plan is missing, changing nothing', async () => {
    const early = await cli('B', [
      'release',
      '--plan',
      'plan.json',
      '--finish',
      '--promote',
      '--pins',
      `file:${pinsFile}`,
    ]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('moving tags and pins were not changed');
    expect(early.stderr).toContain(
      `platform-agent: not pushed: 127.0.0.1:${proxy.port}/${agentRepo}:${env}-${sha} missing`,
    );
    expect(manifestPuts(platformRepo, `${env}-latest`)).toEqual([]);
    expect(await new FilePinStore(`file:${pinsFile}`).getPin('platform-agent')).toBeNull();
  });

  it('runner B, with an empty engine, builds the agent on the base pulled by digest', async () => {
    expect(await removeTestImages()).toBeGreaterThan(0);
    expect(await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } })).toEqual([]);
    expect((await cli('B', ['stage'])).code).toBe(0);
    const baseDigest = await registry.resolve(platformRepo, `${env}-${sha}`);
    const pushed = await cli('B', ['--json', 'push', 'platform-agent', '--plan', 'plan.json', ...flags]);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stderr).toContain(`pulling base 127.0.0.1:${proxy.port}/${platformRepo}@${baseDigest}`);
    // The base was pulled, never rebuilt or pushed again.
    expect(pushed.stderr).not.toMatch(/\[build\] platform building/);
    expect(manifestPuts(platformRepo, `${env}-${sha}`)).toHaveLength(1);

    const agentDigest = JSON.parse(pushed.stdout).images[0].digest as string;
    const baseLayers = await layersOf(platformRepo, baseDigest as string);
    const agentLayers = await layersOf(agentRepo, agentDigest);
    expect(agentLayers.length).toBeGreaterThan(baseLayers.length);
    expect(agentLayers.slice(0, baseLayers.length)).toEqual(baseLayers);
    const details = await registry.imageDetails(agentRepo, agentDigest);
    expect(details?.labels[LABELS.baseDigest]).toBe(
      await registry.configDigest(platformRepo, baseDigest as string),
    );

    // The pulled base is the image runner A built (ID = config digest), so the agent's input
    // digest is what it would be on runner A: building it again here finds it up to date.
    expect(await registry.configDigest(platformRepo, baseDigest as string)).toBe(baseIdOnA);
    const again = await cli('B', ['--json', 'build', 'platform-agent', '--plan', 'plan.json', ...flags]);
    expect(again.code, again.stderr).toBe(0);
    expect(
      JSON.parse(again.stdout).images.map((i: { name: string; reused: boolean }) => [i.name, i.reused]),
    ).toEqual([['platform-agent', true]]);
    const smoked = await cli('B', [
      'smoke',
      'platform-agent',
      '--plan',
      'plan.json',
      '--pins',
      `file:${pinsFile}`,
    ]);
    expect(smoked.code, smoked.stderr).toBe(0);
  });

  it('the finishing step moves each moving tag once and the pin once', async () => {
    const finished = await cli('B', [
      '--json',
      'release',
      '--plan',
      'plan.json',
      '--finish',
      '--promote',
      '--pins',
      `file:${pinsFile}`,
    ]);
    expect(finished.code, finished.stderr).toBe(0);
    const result = JSON.parse(finished.stdout);
    const platform = await registry.resolve(platformRepo, `${env}-${sha}`);
    const agent = await registry.resolve(agentRepo, `${env}-${sha}`);
    expect(
      result.images.map((i: { name: string; digest: string; smoke: string }) => [i.name, i.digest, i.smoke]),
    ).toEqual([
      ['platform', platform, 'passed'],
      ['platform-agent', agent, 'passed'],
    ]);
    expect(await registry.resolve(platformRepo, `${env}-latest`)).toBe(platform);
    expect(await registry.resolve(agentRepo, `${env}-latest`)).toBe(agent);
    expect(manifestPuts(platformRepo, `${env}-latest`)).toHaveLength(1);
    expect(manifestPuts(agentRepo, `${env}-latest`)).toHaveLength(1);

    const pins = new FilePinStore(`file:${pinsFile}`);
    expect((await pins.getPin('platform-agent'))?.digest).toBe(agent);
    const history = await pins.history('platform-agent');
    expect(history.map((h) => [h.fromDigest, h.toDigest, h.by])).toEqual([[null, agent, 'runner-B']]);

    // Finishing again is a no-op: nothing moves a second time.
    const again = await cli('A', [
      'release',
      '--plan',
      'plan.json',
      '--finish',
      '--promote',
      '--pins',
      `file:${pinsFile}`,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(manifestPuts(platformRepo, `${env}-latest`)).toHaveLength(1);
    expect(manifestPuts(agentRepo, `${env}-latest`)).toHaveLength(1);
    expect(await pins.history('platform-agent')).toHaveLength(1);
  });

  it('a plugged-in verdict source (e.g. registry attestations) decides instead of the smoke records', async () => {
    const plan = parsePlan(readFileSync(planA(), 'utf8'), 'plan.json');
    const pins = new FilePinStore(`file:${pinsFile}`);
    const putsBefore = proxy.writes().length;
    const refusing: VerdictSource = {
      description: 'attestations in the registry',
      async verdict(image, ref) {
        return image.name === 'platform-agent'
          ? { passed: false, record: null, message: `${ref} has no attestation` }
          : { passed: true, record: null, message: 'attested' };
      },
    };
    const err = await finishRelease(
      plan,
      { by: 'tester', promote: true, verdicts: refusing },
      {
        registry: await openRegistry(`oci://${proxy.addr}`, {}),
        pins,
        verdicts: pins,
        sink: collectingSink(),
        redactor: new Redactor(),
      },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GATE_REFUSED' });
    expect((err as Error).message).toContain('platform-agent: not verified: ');
    expect((err as Error).message).toContain('has no attestation');
    expect((err as Error).message).not.toMatch(/^\s+platform: /m);
    expect(proxy.writes().length).toBe(putsBefore);
  });

  it('a production pin store that saw no smoke finishes on the attestations the runners attached', async () => {
    const prodPins = `file:${pinsFile}.production.json`;
    const finished = await cli('B', [
      '--json',
      'release',
      '--plan',
      'plan.json',
      '--finish',
      '--promote',
      '--pins',
      prodPins,
    ]);
    expect(finished.code, finished.stderr).toBe(0);
    const agent = await registry.resolve(agentRepo, `${env}-${sha}`);
    const result = JSON.parse(finished.stdout);
    expect(result.images.map((i: { smoke: string }) => i.smoke)).toEqual(['passed', 'passed']);
    const pins = new FilePinStore(prodPins);
    expect((await pins.getPin('platform-agent'))?.digest).toBe(agent);
    // No smoke was recorded in this store: the verdict came from the registry.
    expect(await pins.smokeRecords(agent ?? '')).toEqual([]);
  });
});
