/**
 * Installable as users install it: `npm pack` of this checkout, installed into an empty project
 * (dependencies from the npm registry or its cache), runs `slipway --help` and `--version`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'slipway-package-'));
const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string })
  .version;

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the npm package', () => {
  it('installs from its tarball into an empty project and runs', () => {
    // prepack builds dist; the tarball holds what "files" lists.
    execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: repo, stdio: 'pipe' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBe(`slipway-${version}.tgz`);
    const project = path.join(work, 'app');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), '{ "name": "app", "private": true }\n');
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--silent', path.join(work, tarball ?? '')],
      { cwd: project, stdio: 'pipe' },
    );
    const bin = path.join(project, 'node_modules', '.bin', 'slipway');
    expect(execFileSync(bin, ['--version'], { cwd: project, encoding: 'utf8' }).trim()).toBe(version);
    const help = execFileSync(bin, ['--help'], { cwd: project, encoding: 'utf8' });
    expect(help).toContain('Usage: slipway [options] [command]');
    expect(help).toMatch(/^\s+release \[options\]/m);
    // The library entry resolves too.
    const lib = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('slipway'); console.log(typeof m.release, typeof m.openPorts)",
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(lib.trim()).toBe('function function');
  }, 300_000);
});
