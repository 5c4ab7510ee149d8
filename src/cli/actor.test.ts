import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.js';
import { makeTempDir } from '../../test/support/temp.js';

const digest = `sha256:${'c'.repeat(64)}`;
const ref = `127.0.0.1:5000/team/agent@${digest}`;

/** A manifest dir with one runtime pin, a file pin store, optionally a git repo with a local user. */
function project(gitUser?: string): string {
  const dir = makeTempDir('slipway-actor-');
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      images: { agent: { dockerfile: 'Dockerfile', repository: 'team/agent' } },
      pins: { agent: { image: 'agent' } },
    }),
  );
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  if (gitUser) {
    execFileSync('git', ['init', '-q'], { cwd: dir });
    execFileSync('git', ['config', 'user.name', gitUser], { cwd: dir });
  }
  return dir;
}

const promoteForced = ['--json', 'pins', 'promote', 'agent', ref, '--force', '--reason', 'hotfix'];

/** An environment where git finds no global identity. */
function bareEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = path.join(dir, 'home');
  mkdirSync(home, { recursive: true });
  return { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1', ...extra };
}

describe('the audit trail names a real actor', () => {
  it('refuses a forced promotion when nobody can be named, with a hint to pass --by', async () => {
    const dir = project();
    const r = await runCli(promoteForced, { cwd: dir, env: bareEnv(dir) });
    expect(r.code).toBe(1);
    const error = JSON.parse(r.stdout).error;
    expect(error.code).toBe('GATE_REFUSED');
    expect(error.hint).toContain('--by');
    // Nothing was written.
    const list = await runCli(['--json', 'pins', 'list'], { cwd: dir, env: bareEnv(dir) });
    expect(JSON.parse(list.stdout).pins).toEqual([]);
  });

  it('refuses a rollback when nobody can be named', async () => {
    const dir = project();
    const r = await runCli(['pins', 'rollback', 'agent'], { cwd: dir, env: bareEnv(dir) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nobody can be named as its actor');
  });

  it('records the CI actor when SLIPWAY_ACTOR and USER are unset', async () => {
    const dir = project();
    const r = await runCli(promoteForced, { cwd: dir, env: bareEnv(dir, { GITEA_ACTOR: 'gitea-bot' }) });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).pin.updatedBy).toBe('gitea-bot');
  });

  it('falls back to the git user of the manifest directory', async () => {
    const dir = project('Release Engineer');
    const r = await runCli(promoteForced, { cwd: dir, env: bareEnv(dir) });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).pin.updatedBy).toBe('Release Engineer');
    const history = await runCli(['--json', 'pins', 'history', 'agent'], { cwd: dir, env: bareEnv(dir) });
    expect(
      JSON.parse(history.stdout).entries.map((e: { by: string; forced: boolean }) => [e.by, e.forced]),
    ).toEqual([['Release Engineer', true]]);
  });

  it('--by wins over everything', async () => {
    const dir = project('Release Engineer');
    const r = await runCli([...promoteForced, '--by', 'alice'], {
      cwd: dir,
      env: bareEnv(dir, { SLIPWAY_ACTOR: 'ci', GITHUB_ACTOR: 'octo' }),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).pin.updatedBy).toBe('alice');
  });
});
