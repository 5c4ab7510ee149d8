import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.js';
import { buildProgram } from './main.js';

const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
  version: string;
};

/** Every command path, nested ones included (`pins promote`). */
function commandPaths(): string[][] {
  const { program } = buildProgram({ stdout: () => {}, stderr: () => {}, env: {}, cwd: '.' });
  const out: string[][] = [];
  const walk = (cmd: typeof program, prefix: string[]) => {
    for (const sub of cmd.commands) {
      out.push([...prefix, sub.name()]);
      walk(sub, [...prefix, sub.name()]);
    }
  };
  walk(program, []);
  return out;
}

describe('slipway --version and help', () => {
  it('--version prints the package version and exits 0', async () => {
    const r = await runCli(['--version'], { cwd: '.' });
    expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({ code: 0, stdout: pkg.version });
  });

  const paths = commandPaths();
  it('knows every command', () => {
    expect(paths.map((p) => p.join(' '))).toEqual(
      expect.arrayContaining([
        'verify',
        'stage',
        'plan',
        'build',
        'push',
        'tag',
        'smoke',
        'pins promote',
        'release',
        'status',
      ]),
    );
  });

  for (const p of paths) {
    it(`"${p.join(' ')} --help" and "help ${p.join(' ')}" print its usage and exit 0`, async () => {
      const viaFlag = await runCli([...p, '--help'], { cwd: '.' });
      expect(viaFlag.code).toBe(0);
      expect(viaFlag.stdout).toContain(`Usage: slipway ${p.join(' ')}`);
      const viaHelp = await runCli(['help', ...p], { cwd: '.' });
      expect(viaHelp.code).toBe(0);
      expect(viaHelp.stdout).toContain(`Usage: slipway ${p.join(' ')}`);
    });
  }
});
