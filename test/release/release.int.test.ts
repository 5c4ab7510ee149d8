/**
 * release() as a library user calls it: with ports injected (the real engine, the real registry,
 * a file pin store), not through the CLI. What a user observes: the registry's tags, the pin
 * store's pins and history, and the events.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { Redactor } from '../../src/core/redact.js';
import { DEFAULT_TIMEOUTS } from '../../src/core/timeouts.js';
import { dockerConnectionFromEnv } from '../../src/engine/docker-connection.js';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { type LoadedManifest, loadManifest } from '../../src/manifest/load.js';
import { FilePinStore } from '../../src/promote/file-store.js';
import { openRegistry } from '../../src/publish/open.js';
import type { Registry } from '../../src/publish/registry.js';
import type { ReleasePorts } from '../../src/release/release.js';
import { release } from '../../src/release/release.js';
import { sourceFor } from '../../src/sources/index.js';
import { type TempProject, tempProject } from '../support/project.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';

const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/release-${run}`;
const docker = new Docker();
const dirs: string[] = [];
const projects: TempProject[] = [];
const project = () => {
  const p = tempProject(prefix);
  projects.push(p);
  return p;
};

const sha = () => randomBytes(20).toString('hex');

async function portsFor(dir: string, registry: Registry) {
  const sink = collectingSink();
  const pins = new FilePinStore(`file:${path.join(dir, '.slipway', 'pins.json')}`);
  const ports: ReleasePorts = {
    engine: dockerEngine(dockerConnectionFromEnv(process.env)),
    registry,
    pins,
    verdicts: pins,
    sources: (template, ctx) => sourceFor(template, ctx),
    sink,
    clock: () => new Date(),
    redactor: new Redactor(),
    timeouts: DEFAULT_TIMEOUTS,
  };
  return { ports, sink, pins };
}

async function catchError(p: Promise<unknown>): Promise<SlipwayError> {
  try {
    await p;
  } catch (err) {
    if (isSlipwayError(err)) return err;
    throw err;
  }
  throw new Error('expected the release to fail');
}

let registry: Registry;
const cacheDir = mkdtempSync(path.join(tmpdir(), 'slipway-release-cache-'));
dirs.push(cacheDir);

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  registry = await openRegistry(`oci://${registryAddr}`, {});
});

afterAll(async () => {
  const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  for (const i of images)
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const p of projects) p.remove();
});

describe('release() with injected ports', () => {
  const p = project();
  p.writeManifest();
  let loaded: LoadedManifest;
  let first: Awaited<ReturnType<typeof release>>;
  const firstSha = sha();

  it('publishes, smokes, moves the moving tags and promotes the pin', async () => {
    loaded = await loadManifest(path.join(p.dir, 'manifest.json'));
    const { ports, pins } = await portsFor(p.dir, registry);
    first = await release(
      loaded,
      { env: 'rel', sha: firstSha, by: 'tester', promote: true, cacheDir },
      ports,
    );

    expect(first.plan.images.map((i) => i.name)).toEqual(['platform', 'platform-agent']);
    expect(first.smoke.map((r) => [r.imageName, r.passed])).toEqual([
      ['platform', true],
      ['platform-agent', true],
    ]);
    for (const image of first.pushed.images) {
      const repo = image.name === 'platform' ? `${prefix}/platform` : `${prefix}/molecule-platform-agent`;
      expect(await registry.resolve(repo, `rel-${firstSha}`)).toBe(image.digest);
      expect(await registry.resolve(repo, 'rel-latest')).toBe(image.digest);
      // Every verdict was recorded for the digest it is about.
      expect((await pins.smokeRecords(image.digest)).map((r) => r.passed)).toEqual([true]);
    }
    const agent = first.pushed.images.find((i) => i.name === 'platform-agent');
    const pin = await pins.getPin('platform-agent');
    expect(pin?.digest).toBe(agent?.digest);
    expect(pin?.updatedBy).toBe('tester');
    expect((await pins.history('platform-agent')).length).toBe(1);
  });

  it('a re-run with the same inputs changes nothing', async () => {
    const { ports, pins, sink } = await portsFor(p.dir, registry);
    const again = await release(
      loaded,
      { env: 'rel', sha: firstSha, by: 'tester', promote: true, cacheDir },
      ports,
    );
    expect(Object.values(again.built).map((b) => [b.name, b.reused])).toEqual([
      ['platform', true],
      ['platform-agent', true],
    ]);
    expect(again.pushed.images.map((i) => [i.name, i.digest, i.pushed])).toEqual(
      first.pushed.images.map((i) => [i.name, i.digest, []]),
    );
    expect(again.promotions.map((r) => r.applied)).toEqual([false]);
    expect((await pins.history('platform-agent')).length).toBe(1);
    expect(sink.events.filter((e) => e.kind === 'step-start' && e.stage === 'build')).toEqual([]);
  });

  it('a smoke failure leaves the moving tags and the pins where they were', async () => {
    // A new template commit (a new agent image) whose smoke spec cannot pass.
    writeFileSync(path.join(p.dir, 'templates/platform-agent/prompts/extra.md'), `changed ${run}\n`);
    p.commit('template change');
    p.writeManifest((m) =>
      m.images['platform-agent'].smoke.assertions.push({
        kind: 'path',
        name: 'a file the template does not have',
        path: '/configs/not-there.yaml',
        type: 'file',
      }),
    );
    const changed = await loadManifest(path.join(p.dir, 'manifest.json'));
    const { ports, pins } = await portsFor(p.dir, registry);
    const pinBefore = await pins.getPin('platform-agent');
    const secondSha = sha();
    const err = await catchError(
      release(changed, { env: 'rel', sha: secondSha, by: 'tester', promote: true, cacheDir }, ports),
    );
    expect(err.code).toBe('SMOKE_FAILED');
    expect(err.message).toContain('moving tags and pins were not changed');

    const agentRepo = `${prefix}/molecule-platform-agent`;
    const newDigest = await registry.resolve(agentRepo, `rel-${secondSha}`);
    const oldDigest = first.pushed.images.find((i) => i.name === 'platform-agent')?.digest;
    // The new image was pushed under its immutable tag, but nothing moved to it.
    expect(newDigest).not.toBeNull();
    expect(newDigest).not.toBe(oldDigest);
    expect(await registry.resolve(agentRepo, 'rel-latest')).toBe(oldDigest);
    expect(await registry.resolve(`${prefix}/platform`, 'rel-latest')).toBe(
      first.pushed.images.find((i) => i.name === 'platform')?.digest,
    );
    expect(await pins.getPin('platform-agent')).toEqual(pinBefore);
    expect((await pins.smokeRecords(newDigest as string)).map((r) => r.passed)).toEqual([false]);
  });
});

describe('release() with bad registry credentials', () => {
  let proxy: RegistryProxy;
  beforeAll(async () => {
    proxy = await RegistryProxy.start({
      upstream: registryAddr,
      auth: { mode: 'basic', username: 'robot', password: `right-${run}` },
    });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('fails before anything is built, naming the registry', async () => {
    const p = project();
    p.writeManifest();
    const loaded = await loadManifest(path.join(p.dir, 'manifest.json'));
    const bad = await openRegistry(`oci://${proxy.addr}`, { username: 'robot', password: 'wrong-password' });
    const { ports, sink } = await portsFor(p.dir, bad);
    const err = await catchError(release(loaded, { env: 'rel', sha: sha(), by: 'tester', cacheDir }, ports));
    expect(err.message).toContain('401');
    expect(err.message).not.toContain('wrong-password');
    expect(sink.events.filter((e) => e.stage === 'build')).toEqual([]);
    expect(proxy.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });
});
