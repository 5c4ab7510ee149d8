/**
 * Slipway against a remote engine, the way the docker CLI reaches one: a whole release through
 * `DOCKER_HOST=tcp://127.0.0.1:2375` (the services script makes the local dockerd answer there),
 * and a build through a `DOCKER_CONTEXT` stored as `docker context create` stores it. A dead
 * address fails as an unreachable engine, so the variables are proven to be what is used.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/publish/open.js';
import { runCli } from '../support/cli.js';
import { type TempProject, tempProject } from '../support/project.js';
import { deadPort } from '../support/registry-proxy.js';
import { dockerTcpAddr, registryAddr, requireServices } from '../support/services.js';

const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/remote-${run}`;
const sha = randomBytes(20).toString('hex');
const docker = new Docker();
let project: TempProject;
let home: string;

/** Stores a docker context named `name` for `host` under `$HOME/.docker`. */
function storeContext(name: string, host: string): void {
  const dir = path.join(home, '.docker', 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'meta.json'),
    JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }),
  );
}

const cli = (args: string[], env: NodeJS.ProcessEnv) =>
  runCli(['-m', project.manifestFile, ...args], {
    cwd: project.dir,
    env: { PATH: process.env.PATH, HOME: home, SLIPWAY_ACTOR: 'remote-tester', ...env },
  });

beforeAll(async () => {
  await requireServices(['docker', 'dockerTcp', 'registry', 'rootImage']);
  home = mkdtempSync(path.join(tmpdir(), 'slipway-remote-home-'));
  project = tempProject(prefix);
  project.writeManifest();
});

afterAll(async () => {
  const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  const isAgent = (i: Docker.ImageInfo) => (i.RepoTags ?? []).join().includes('agent');
  for (const i of images.sort((a, b) => Number(isAgent(b)) - Number(isAgent(a))))
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => undefined);
  project?.remove();
  rmSync(home, { recursive: true, force: true });
});

describe('a remote engine', () => {
  it(`runs a release through DOCKER_HOST=tcp://${dockerTcpAddr}`, async () => {
    const result = await cli(['--json', 'release', '--env', 'remote', '--sha', sha, '--promote'], {
      DOCKER_HOST: `tcp://${dockerTcpAddr}`,
    });
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.images.map((i: { name: string; smoke: string }) => [i.name, i.smoke])).toEqual([
      ['platform', 'passed'],
      ['platform-agent', 'passed'],
    ]);
    const registry = await openRegistry(`oci://${registryAddr}`, {});
    for (const image of doc.images as Array<{ repository: string; digest: string }>) {
      const repo = image.repository.replace(`${registryAddr}/`, '');
      expect(await registry.resolve(repo, 'remote-latest')).toBe(image.digest);
    }
    expect(doc.pins.map((p: { runtime: string; applied: boolean }) => [p.runtime, p.applied])).toEqual([
      ['platform-agent', true],
    ]);
  });

  it('fails as an unreachable engine (exit 3) when DOCKER_HOST names a dead address', async () => {
    const result = await cli(['build', '--env', 'remote', '--sha', sha], {
      DOCKER_HOST: `tcp://127.0.0.1:${await deadPort()}`,
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/the Docker engine at tcp:\/\/127\.0\.0\.1:\d+ is unreachable/);
  });

  it('builds through the engine of DOCKER_CONTEXT, and a context on a dead address is unreachable', async () => {
    storeContext('loopback-tcp', `tcp://${dockerTcpAddr}`);
    const built = await cli(['--json', 'build', '--env', 'remote', '--sha', sha], {
      DOCKER_CONTEXT: 'loopback-tcp',
    });
    expect(built.code, built.stderr).toBe(0);
    // The release above built the same inputs on the same engine: reused, not rebuilt.
    expect(
      JSON.parse(built.stdout).images.map((i: { name: string; reused: boolean }) => [i.name, i.reused]),
    ).toEqual([
      ['platform', true],
      ['platform-agent', true],
    ]);
    storeContext('dead', `tcp://127.0.0.1:${await deadPort()}`);
    const dead = await cli(['build', '--env', 'remote', '--sha', sha], { DOCKER_CONTEXT: 'dead' });
    expect(dead.code).toBe(3);
    expect(dead.stderr).toContain('is unreachable');
  });
});
