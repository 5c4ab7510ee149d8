/** `slipway plan` and `slipway build` run in-process against the real engine. */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedManifest } from '../../src/manifest/load.js';
import { runCli } from '../support/cli.js';
import { requireServices } from '../support/services.js';
import { stagedRepo } from './layout.js';

const docker = new Docker();
const run = randomBytes(4).toString('hex');
const SHA = randomBytes(20).toString('hex');
const built: string[] = [];

function slipway(argv: string[], cwd: string) {
  return runCli(argv, { cwd });
}

let loaded: LoadedManifest;

beforeAll(async () => {
  await requireServices(['docker', 'rootImage']);
  ({ loaded } = await stagedRepo(run));
});

afterAll(async () => {
  for (const id of built.reverse()) {
    await docker
      .getImage(id)
      .remove({ force: true })
      .catch(() => undefined);
  }
});

describe('slipway plan / build', () => {
  it('plan --json prints the plan document; without --sha outside git it asks for one', async () => {
    const r = await slipway(['--json', 'plan', '--env', 'staging', '--sha', SHA], loaded.dir);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const doc = JSON.parse(r.stdout);
    expect([doc.version, doc.env, doc.images.map((i: { name: string }) => i.name)]).toEqual([
      1,
      'staging',
      ['platform', 'platform-agent'],
    ]);
    expect(doc.images[1].immutableTags).toEqual([`staging-${SHA}`]);

    const noSha = await slipway(['plan'], loaded.dir);
    expect(noSha.code).toBe(2);
    expect(noSha.stderr).toContain('is not a git checkout with a commit');
    expect(noSha.stderr).toContain('hint: pass --sha <40-hex commit>');
  });

  it('build prints what it built; build --plan FILE executes that plan and finds it up to date', async () => {
    const r = await slipway(['--json', 'build', '--sha', SHA], loaded.dir);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    for (const b of doc.images) built.push(b.id);
    expect(doc.images.map((b: { name: string; reused: boolean }) => [b.name, b.reused])).toEqual([
      ['platform', false],
      ['platform-agent', false],
    ]);
    expect(r.stderr).toContain('[preflight] platform-agent ok:');
    expect(r.stderr).toContain('[build] platform-agent | ');

    const plan = await slipway(['--json', 'plan', '--env', 'dev', '--sha', SHA], loaded.dir);
    const planFile = path.join(loaded.dir, 'plan.json');
    writeFileSync(planFile, plan.stdout);
    const again = await slipway(['--json', 'build', '--plan', 'plan.json'], loaded.dir);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).images).toEqual(doc.images.map((b: object) => ({ ...b, reused: true })));
    rmSync(planFile);
  });

  it('build without a staging receipt tells the user to run slipway stage', async () => {
    const receipt = path.join(loaded.dir, loaded.manifest.stagingDir, 'staged.lock.json');
    rmSync(receipt);
    const r = await slipway(['build', '--sha', SHA], loaded.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('hint: run `slipway stage` first');
  });
});
