import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSlipwayError } from '../core/errors.js';
import { digestDirectory, materialise, missingRequired } from './tree.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-tree-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(root: string, files: Record<string, string>, order: string[] = Object.keys(files)): void {
  for (const rel of order) {
    const abs = path.join(root, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, files[rel] ?? '');
  }
}

const FILES = {
  'config.yaml': 'name: agent\n',
  'prompts/system.md': '# system\n',
  'identity-fallback.sh': '#!/bin/sh\n',
};

describe('tree digest of a staged directory', () => {
  it('does not depend on creation order or timestamps', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    write(a, FILES);
    write(b, FILES, Object.keys(FILES).reverse());
    utimesSync(path.join(b, 'config.yaml'), new Date(0), new Date(0));
    expect(await digestDirectory(b)).toEqual(await digestDirectory(a));
  });

  it('changes with one byte, with the exec bit, and with a symlink target', async () => {
    const base = path.join(dir, 'base');
    write(base, FILES);
    symlinkSync('system.md', path.join(base, 'prompts/current.md'));
    const digest = async () => (await digestDirectory(base)).digest;
    const seen = [await digest()];
    writeFileSync(path.join(base, 'config.yaml'), 'name: agenT\n');
    seen.push(await digest());
    chmodSync(path.join(base, 'identity-fallback.sh'), 0o755);
    seen.push(await digest());
    rmSync(path.join(base, 'prompts/current.md'));
    symlinkSync('other.md', path.join(base, 'prompts/current.md'));
    seen.push(await digest());
    expect(new Set(seen).size).toBe(4);
    expect(await digestDirectory(base)).toEqual({ digest: seen[3], files: 4, bytes: 31 });
  });

  it('equals the staged copy digest and ignores .git', async () => {
    const src = path.join(dir, 'src');
    write(src, { ...FILES, '.git/config': '[core]\n', 'sub/.git': 'gitdir: x\n' });
    const result = await materialise(src, path.join(dir, 'out'), { subject: 'agent' });
    expect(result.digest).toBe((await digestDirectory(path.join(dir, 'out'))).digest);
    expect(result.entries.map((e) => e.path)).toEqual([
      'config.yaml',
      'identity-fallback.sh',
      'prompts/system.md',
    ]);
    expect(readdirSync(path.join(dir, 'out')).sort()).toEqual([
      'config.yaml',
      'identity-fallback.sh',
      'prompts',
    ]);
  });
});

describe('materialise', () => {
  async function refusal(files: Record<string, string>, opts: { allowSensitive?: string[] } = {}) {
    const src = path.join(dir, 'src');
    write(src, files);
    try {
      return await materialise(src, path.join(dir, 'out'), { subject: 'agent', ...opts });
    } catch (err) {
      if (!isSlipwayError(err)) throw err;
      return { code: err.code, message: err.message, details: err.details, hint: err.hint };
    }
  }

  it('refuses every credential-looking file at once, naming each', async () => {
    expect(
      await refusal({ ...FILES, '.env': 'A=1', 'keys/deploy.pem': 'x', '.npmrc': '//r/:_authToken=abc' }),
    ).toEqual({
      code: 'STAGING_REFUSED',
      message:
        'template "agent" holds 3 credential-looking files: .env (looks like a dotenv file), .npmrc (looks like a .npmrc holding a secret), keys/deploy.pem (looks like a PEM key or certificate)',
      details: [
        { at: '.env', message: 'looks like a dotenv file' },
        { at: '.npmrc', message: 'looks like a .npmrc holding a secret' },
        { at: 'keys/deploy.pem', message: 'looks like a PEM key or certificate' },
      ],
      hint: 'remove them from the template, leave them out with "exclude", or, if they are deliberately public (a test key), list them in templates.agent.allowSensitive',
    });
  });

  it('stages credential-looking files matched by allowSensitive, and a harmless .npmrc', async () => {
    const result = await refusal(
      { ...FILES, 'test/fixture.pem': 'public', '.npmrc': 'registry=https://r/\n' },
      { allowSensitive: ['test/*.pem'] },
    );
    expect('entries' in result && result.entries.map((e) => e.path)).toEqual([
      '.npmrc',
      'config.yaml',
      'identity-fallback.sh',
      'prompts/system.md',
      'test/fixture.pem',
    ]);
  });

  it("stages and reports credential-looking files in 'warn' mode (StageOptions.allowSensitive)", async () => {
    const src = path.join(dir, 'src');
    write(src, { ...FILES, '.env': 'A=1' });
    const result = await materialise(src, path.join(dir, 'out'), { subject: 'agent', sensitive: 'warn' });
    expect([result.files, result.sensitiveStaged]).toEqual([4, ['.env']]);
  });

  it('applies include and exclude before the credential check', async () => {
    const src = path.join(dir, 'src');
    write(src, { ...FILES, '.env': 'A=1', 'docs/a.md': 'a', 'prompts/draft.md': 'd' });
    const result = await materialise(src, path.join(dir, 'out'), {
      subject: 'agent',
      include: ['config.yaml', 'prompts/**', '.env'],
      exclude: ['prompts/draft.md', '.env'],
    });
    expect({ paths: result.entries.map((e) => e.path), files: result.files, bytes: result.bytes }).toEqual({
      paths: ['config.yaml', 'prompts/system.md'],
      files: 2,
      bytes: 21,
    });
  });

  it('refuses symlinks that resolve outside and special files', async () => {
    const src = path.join(dir, 'src');
    write(src, FILES);
    symlinkSync('.', path.join(src, 's'));
    symlinkSync('s/..', path.join(src, 'up'));
    await expect(materialise(src, path.join(dir, 'out'), { subject: 'agent' })).rejects.toMatchObject({
      code: 'STAGING_REFUSED',
      message: 'template "agent": "up" is a symlink that resolves outside the template (s/..)',
    });
  });

  it('lists missing required files and accepts directories', () => {
    const entries = ['config.yaml', 'prompts/system.md'].map((p) => ({
      path: p,
      type: 'file' as const,
      mode: 0o644,
      sha256: '0',
    }));
    expect(
      missingRequired(entries, [
        'config.yaml',
        'prompts',
        'prompts/',
        './config.yaml',
        'mcp_servers',
        'prom',
      ]),
    ).toEqual(['mcp_servers', 'prom']);
  });
});
