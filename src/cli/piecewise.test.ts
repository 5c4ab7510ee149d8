import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function project(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-piecewise-'));
  dirs.push(dir);
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({ version: 1, images: { app: { dockerfile: 'Dockerfile', repository: 'team/app' } } }),
  );
  return dir;
}

describe('the piecewise flags of the CLI', () => {
  it('refuses --finish without --plan, and --plan without --finish on release (exit 2)', async () => {
    const cwd = project();
    for (const argv of [
      ['release', '--finish'],
      ['release', '--plan', 'plan.json'],
    ]) {
      const r = await runCli(argv, { cwd });
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toContain('--finish and --plan go together');
    }
  });

  it('refuses --sha with --finish: the plan fixes it', async () => {
    const r = await runCli(['release', '--plan', 'p.json', '--finish', '--sha', 'a'.repeat(40)], {
      cwd: project(),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--finish builds nothing');
  });

  it('refuses a plan made from another manifest before touching any registry', async () => {
    const cwd = project();
    const plan = {
      version: 1,
      env: 'dev',
      sha: 'a'.repeat(40),
      source: null,
      images: [
        {
          name: 'app',
          repository: 'other/app',
          dockerfile: 'Dockerfile',
          context: '.',
          contextDigest: `sha256:${'0'.repeat(64)}`,
          base: null,
          buildArgs: {},
          target: null,
          labels: {},
          templates: [],
          immutableTags: ['dev-x'],
          movingTags: ['dev-latest'],
          smoke: null,
        },
      ],
      pins: [],
    };
    writeFileSync(path.join(cwd, 'plan.json'), JSON.stringify(plan));
    const r = await runCli(
      ['release', '--plan', 'plan.json', '--finish', '--registry', 'oci://127.0.0.1:1'],
      {
        cwd,
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('plan.json: image app (other/app) is not an image of');
  });

  it('smoke takes one of --ref, --plan and --local', async () => {
    const r = await runCli(['smoke', 'app', '--plan', 'p.json', '--local', 'x'], { cwd: project() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot be used with/);
  });
});
