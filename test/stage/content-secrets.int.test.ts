/** A template file whose content holds a credential is refused at staging, by file:line, never echoing it. */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { tempDir, writeManifest, writeTree } from './helpers.js';

// Built at run time so the repository itself holds no literal token.
const token = `${'ghp_'}${'Zq8Lm3Xv9Tk2Wp7Rb4Ny6Hs1Jd5Gf0CeUaQiOo'.slice(0, 36)}`;
const dirs: string[] = [];
const STAGED = '.tenant-bundle-deps/workspace-configs-templates';

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function project(allowSensitive?: string[]): Promise<string> {
  const dir = tempDir('content-secrets');
  dirs.push(dir);
  writeTree(path.join(dir, 'template'), {
    'config.yaml': 'name: agent\n',
    'hooks/clone.sh': `#!/bin/sh\n# fetch the tools\ngit clone https://ci:${token}@github.com/org/tools.git\n`,
    'README.md': 'Set GITHUB_TOKEN; see https://example.com/docs\n',
  });
  await writeManifest(dir, {
    agent: { source: { path: 'template' }, ...(allowSensitive ? { allowSensitive } : {}) },
  });
  return dir;
}

describe('staging refuses credentials inside files', () => {
  it('names file and line, exits 1, stages nothing, and never prints the token', async () => {
    const dir = await project();
    const out = await runCli(['--json', 'stage'], { cwd: dir });
    expect(out.code, out.stderr).toBe(1);
    const json = JSON.parse(out.stdout) as { error: { code: string; message: string; details: unknown[] } };
    expect(json.error.code).toBe('STAGING_REFUSED');
    expect(json.error.details).toEqual([
      { at: 'hooks/clone.sh:3', message: 'holds a URL with a password or token' },
      { at: 'hooks/clone.sh:3', message: 'holds a GitHub token' },
    ]);
    expect(json.error.message).toContain('hooks/clone.sh:3 (holds a GitHub token)');
    expect(out.stdout + out.stderr).not.toContain(token);
    expect(out.stdout + out.stderr).not.toContain(token.slice(4, 20));
    expect(existsSync(path.join(dir, STAGED, 'agent'))).toBe(false);
  });

  it('stages a file allowSensitive lists, with a warning naming it (and still not the token)', async () => {
    const dir = await project(['hooks/clone.sh']);
    const out = await runCli(['stage'], { cwd: dir });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(
      '[stage] agent warn: staging hooks/clone.sh:3 (holds a GitHub token): templates.agent.allowSensitive allows it',
    );
    expect(out.stdout + out.stderr).not.toContain(token);
    expect(existsSync(path.join(dir, STAGED, 'agent', 'hooks', 'clone.sh'))).toBe(true);
  });
});
