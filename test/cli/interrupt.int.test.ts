/**
 * Interrupts through the installed bin (bin/slipway.js -> dist), as a user's Ctrl-C or a CI
 * runner's cancel delivers them: the run stops, removes the containers and volumes it created,
 * leaves moving tags and pins as they were, and exits 130 (SIGINT) or 143 (SIGTERM).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilePinStore } from '../../src/promote/file-store.js';
import { openRegistry } from '../../src/publish/open.js';
import { type TempProject, tempProject } from '../support/project.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/interrupt-${run}`;
const docker = new Docker();
const projects: TempProject[] = [];
const SMOKE_LABEL = 'dev.slipway.smoke';

/** A smoke spec whose readiness never comes: the run is inside smoke until it is interrupted. */
const neverReady = {
  boot: { command: ['sh', '-c', 'echo booted; exec sleep 600'], emptyVolumes: ['/configs'] },
  ready: { log: `never-printed-${run}` },
  timeoutSeconds: 300,
  assertions: [{ kind: 'path', name: 'root', path: '/', type: 'directory' }],
};

function start(
  cwd: string,
  argv: string[],
): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
  stderr: () => string;
} {
  let stderr = '';
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/slipway.js'), ...argv], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SLIPWAY_ACTOR: 'tester' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => stderr };
}

/** Containers and volumes of smoke runs for `imageName` (any state). */
async function smokeLeftovers(imageName: string): Promise<{ containers: number; volumes: number }> {
  const filters = { label: [SMOKE_LABEL, `dev.slipway.image=${imageName}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  return { containers: containers.length, volumes: volumes.length };
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  // The bin runs the built CLI: build it (tsc, then the bundle) from the current sources.
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
}, 240_000);

afterAll(async () => {
  for (const p of projects) p.remove();
  const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  for (const i of images)
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('interrupts through bin/slipway.js', () => {
  it('SIGINT during smoke removes the container and volume and exits 130', async () => {
    const p = tempProject(prefix);
    projects.push(p);
    const imageName = `sleeper-${run}`;
    p.writeManifest((m) => {
      m.images = {
        [imageName]: {
          dockerfile: 'dockerfiles/Dockerfile.platform',
          repository: `${prefix}/sleeper`,
          buildArgs: { ROOT_IMAGE: rootImage },
          smoke: neverReady,
        },
      };
      m.pins = {};
    });
    const proc = start(p.dir, ['smoke', imageName, '--local', rootImage]);
    await waitFor('the smoke container', async () => (await smokeLeftovers(imageName)).containers > 0);
    const t0 = Date.now();
    proc.child.kill('SIGINT');
    const exit = await proc.exited;
    expect(exit).toEqual({ code: 130, signal: null });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(await smokeLeftovers(imageName)).toEqual({ containers: 0, volumes: 0 });
    expect(proc.stderr()).toContain('slipway: SIGINT: stopping and cleaning up');
    expect(proc.stderr()).toMatch(/error: smoke of .* interrupted; its container and volumes were removed/);
    expect(proc.stderr()).not.toMatch(/\n\s+at /);
  });

  it('SIGTERM during a release leaves moving tags and pins as they were and exits 143', async () => {
    const p = tempProject(prefix);
    projects.push(p);
    const pinsUrl = `file:${path.join(p.dir, '.slipway', 'pins.json')}`;
    const registry = await openRegistry(`oci://${registryAddr}`, {});
    const agentRepo = `${prefix}/molecule-platform-agent`;
    // A first, good release: the moving tag and the pin point at its digest.
    p.writeManifest();
    const first = start(p.dir, [
      'release',
      '--registry',
      `oci://${registryAddr}`,
      '--env',
      'int',
      '--sha',
      'a'.repeat(40),
      '--pins',
      pinsUrl,
      '--promote',
    ]);
    const firstExit = await first.exited;
    expect(firstExit.code, first.stderr()).toBe(0);
    const latestBefore = await registry.resolve(agentRepo, 'int-latest');
    const pins = new FilePinStore(pinsUrl);
    const pinBefore = await pins.getPin('platform-agent');
    expect(pinBefore?.digest).toBe(latestBefore);

    // A second release of a changed agent whose smoke never becomes ready, stopped by SIGTERM.
    p.commit('second');
    p.writeManifest((m) => {
      m.images['platform-agent'].smoke = { ...neverReady };
    });
    const second = start(p.dir, [
      'release',
      '--registry',
      `oci://${registryAddr}`,
      '--env',
      'int',
      '--sha',
      'b'.repeat(40),
      '--pins',
      pinsUrl,
      '--promote',
    ]);
    await waitFor(
      'the agent smoke container',
      async () => (await smokeLeftovers('platform-agent')).containers > 0,
    );
    second.child.kill('SIGTERM');
    const exit = await second.exited;
    expect(exit).toEqual({ code: 143, signal: null });
    expect(await smokeLeftovers('platform-agent')).toEqual({ containers: 0, volumes: 0 });
    expect(await registry.resolve(agentRepo, 'int-latest')).toBe(latestBefore);
    expect(await pins.getPin('platform-agent')).toEqual(pinBefore);
    expect((await pins.history('platform-agent')).length).toBe(1);
  });
});
