import { describe, expect, it } from 'vitest';
import { gitEnv, resolveGitLocation } from './git.js';

describe('git source location', () => {
  it('resolves URLs, scp-style remotes and local paths without credentials in names', () => {
    expect([
      resolveGitLocation('https://user:s3cret-token@git.example.com/t/agent.git', '/m'),
      resolveGitLocation('file:///srv/agent.git', '/m'),
      resolveGitLocation('git@github.com:molecule-ai/templates.git', '/m'),
      resolveGitLocation('.', '/work/repo'),
      resolveGitLocation('../templates', '/work/repo'),
    ]).toEqual([
      {
        url: 'https://user:s3cret-token@git.example.com/t/agent.git',
        identity: 'https://git.example.com/t/agent.git',
        display: 'https://git.example.com/t/agent.git',
        httpOrigin: 'https://git.example.com',
        embeddedSecret: 's3cret-token',
      },
      { url: 'file:///srv/agent.git', identity: 'file:///srv/agent.git', display: 'file:///srv/agent.git' },
      {
        url: 'git@github.com:molecule-ai/templates.git',
        identity: 'ssh://git@github.com:molecule-ai/templates.git',
        display: 'git@github.com:molecule-ai/templates.git',
      },
      { url: '/work/repo', identity: 'file:///work/repo', display: '.' },
      { url: '/work/templates', identity: 'file:///work/templates', display: '../templates' },
    ]);
  });
});

const SSH_30S =
  'ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=30 -o ServerAliveCountMax=1';

describe('git process environment', () => {
  it('puts the token in an origin-scoped header and drops variables that would redirect git', () => {
    const env = gitEnv(
      {
        PATH: '/bin',
        HOME: '/h',
        GIT_DIR: '/elsewhere/.git',
        GIT_CONFIG_KEY_0: 'x',
        GIT_CONFIG_VALUE_0: 'y',
      },
      'https://git.example.com',
      'tok3n',
    );
    expect(env).toEqual({
      PATH: '/bin',
      HOME: '/h',
      GIT_TERMINAL_PROMPT: '0',
      GIT_SSH_COMMAND: SSH_30S,
      LC_ALL: 'C',
      GIT_CONFIG_COUNT: '3',
      GIT_CONFIG_KEY_0: 'http.lowSpeedLimit',
      GIT_CONFIG_VALUE_0: '1000',
      GIT_CONFIG_KEY_1: 'http.lowSpeedTime',
      GIT_CONFIG_VALUE_1: '30',
      GIT_CONFIG_KEY_2: 'http.https://git.example.com/.extraHeader',
      GIT_CONFIG_VALUE_2: `Authorization: Basic ${Buffer.from('x-access-token:tok3n').toString('base64')}`,
    });
  });

  it('sends no header without a token or for non-http sources, and bounds stalls by the request limit', () => {
    expect(gitEnv({}, undefined, 'tok3n', { requestMs: 5_000, operationMs: 10_000 })).toEqual({
      GIT_TERMINAL_PROMPT: '0',
      GIT_SSH_COMMAND:
        'ssh -o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=1',
      LC_ALL: 'C',
      GIT_CONFIG_COUNT: '2',
      GIT_CONFIG_KEY_0: 'http.lowSpeedLimit',
      GIT_CONFIG_VALUE_0: '1000',
      GIT_CONFIG_KEY_1: 'http.lowSpeedTime',
      GIT_CONFIG_VALUE_1: '5',
    });
  });

  it('keeps a GIT_SSH_COMMAND the user set', () => {
    expect(gitEnv({ GIT_SSH_COMMAND: 'ssh -i key' }, undefined, undefined).GIT_SSH_COMMAND).toBe(
      'ssh -i key',
    );
  });
});
