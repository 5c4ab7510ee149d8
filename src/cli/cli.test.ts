import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.js';
import { makeTempDir } from '../../test/support/temp.js';

function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return runCli(argv, { cwd, env });
}

function dirWith(manifest: unknown): string {
  const dir = makeTempDir('cli');
  writeFileSync(
    path.join(dir, 'manifest.json'),
    typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
  );
  return dir;
}

const minimal = {
  version: 1,
  templates: { t: { source: { git: 'https://git.example.com/t.git' }, ref: 'f'.repeat(40) } },
  images: {},
};

describe('CLI contract', () => {
  it('exits 2 on a usage error', async () => {
    const r = await run(['verify', '--no-such-flag'], dirWith(minimal));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it('exits 2 on an unknown command', async () => {
    expect((await run(['explode'], dirWith(minimal))).code).toBe(2);
  });

  it('verifies a good manifest: exit 0, one JSON document on stdout with --json', async () => {
    const r = await run(['--json', 'verify'], dirWith(minimal));
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      ok: true,
      templates: 1,
      images: 0,
      pins: 0,
      checks: ['schema', 'pinning contract'],
    });
  });

  it('refuses a branch ref: exit 1, names the JSON path and the value, no stack trace', async () => {
    const bad = {
      ...minimal,
      templates: { t: { source: { git: 'https://git.example.com/t.git' }, ref: 'main' } },
    };
    const r = await run(['verify'], dirWith(bad));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/templates\.t\.ref: template "t" ref "main" is not a full 40-hex commit/);
    expect(r.stderr).toMatch(/hint: /);
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
    expect(r.stdout).toBe('');
  });

  it('with --json, a failure is still one JSON document on stdout', async () => {
    const r = await run(['--json', 'verify'], dirWith('{"version": 1, "images": {}, "extra": true}'));
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'MANIFEST_INVALID' } });
  });

  it('names a missing manifest and how to point at one', async () => {
    const r = await run(['--manifest', 'nope.json', 'verify'], makeTempDir('cli'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read manifest nope\.json \(ENOENT\)/);
    expect(r.stderr).toMatch(/--manifest PATH/);
  });

  it('strict mode under CI refuses unpinned path sources', async () => {
    const dev = { version: 1, templates: { t: { source: { path: 'x' } } }, images: {} };
    expect((await run(['verify'], dirWith(dev))).code).toBe(0);
    const ci = await run(['verify'], dirWith(dev), { CI: 'true' });
    expect(ci.code).toBe(1);
    expect(ci.stderr).toMatch(/is a local path, not pinned/);
  });
});
