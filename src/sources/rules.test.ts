import { describe, expect, it } from 'vitest';
import {
  allowSensitiveFilter,
  isGitPath,
  needsContentCheck,
  selectionFilter,
  sensitiveReason,
  unsafeEntryName,
  unsafeLinkTarget,
} from './rules.js';

const table = <T>(inputs: string[], fn: (s: string) => T) =>
  Object.fromEntries(inputs.map((i) => [i, fn(i)]));

describe('staging rules', () => {
  it('recognises credential-looking files by name', () => {
    expect(
      table(
        [
          '.env',
          'deploy/.env.production',
          'certs/server.pem',
          'tls.key',
          'home/.ssh/id_rsa',
          'id_ed25519.pub',
          'id_ecdsa',
          'store.p12',
          'store.PFX',
          '.aws/credentials',
          'gcloud/credentials.json',
          'config.yaml',
          'environment.md',
          'keys/README.md',
          'env.example',
        ],
        (p) => sensitiveReason(p),
      ),
    ).toEqual({
      '.env': 'a dotenv file',
      'deploy/.env.production': 'a dotenv file',
      'certs/server.pem': 'a PEM key or certificate',
      'tls.key': 'a private key',
      'home/.ssh/id_rsa': 'an SSH key',
      'id_ed25519.pub': 'an SSH key',
      id_ecdsa: 'an SSH key',
      'store.p12': 'a PKCS#12 key store',
      'store.PFX': 'a PKCS#12 key store',
      '.aws/credentials': 'a cloud CLI credentials file',
      'gcloud/credentials.json': 'a cloud CLI credentials file',
      'config.yaml': undefined,
      'environment.md': undefined,
      'keys/README.md': undefined,
      'env.example': undefined,
    });
  });

  it('judges rc files by whether they hold a secret', () => {
    const cases: Array<[string, string]> = [
      ['.npmrc', 'registry=https://npm.example.com/\n'],
      ['.npmrc', '//npm.example.com/:_authToken=npm_abc\n'],
      ['.netrc', 'machine github.com login x password hunter2\n'],
      ['.netrc', '# empty\n'],
      ['.pypirc', '[pypi]\nusername = __token__\npassword = pypi-abc\n'],
      ['.git-credentials', 'https://x-access-token:ghp_abc@github.com\n'],
      ['.git-credentials', '\n'],
    ];
    expect(cases.map(([p, c]) => [p, needsContentCheck(p), sensitiveReason(p, c) ?? null])).toEqual([
      ['.npmrc', true, null],
      ['.npmrc', true, 'a .npmrc holding a secret'],
      ['.netrc', true, 'a .netrc holding a secret'],
      ['.netrc', true, null],
      ['.pypirc', true, 'a .pypirc holding a secret'],
      ['.git-credentials', true, 'a .git-credentials holding a secret'],
      ['.git-credentials', true, null],
    ]);
  });

  it('filters by include and exclude, dotfiles included', () => {
    const keep = selectionFilter(['**/*.yaml', 'prompts/**', '.agent/**'], ['prompts/drafts/**']);
    expect(
      table(
        ['config.yaml', 'deep/x.yaml', 'prompts/a.md', 'prompts/drafts/b.md', '.agent/id', 'README.md'],
        keep,
      ),
    ).toEqual({
      'config.yaml': true,
      'deep/x.yaml': true,
      'prompts/a.md': true,
      'prompts/drafts/b.md': false,
      '.agent/id': true,
      'README.md': false,
    });
    expect(table(['a', '.hidden/b'], selectionFilter())).toEqual({ a: true, '.hidden/b': true });
    expect(table(['test/fixture.pem', 'real.pem'], allowSensitiveFilter(['test/*.pem']))).toEqual({
      'test/fixture.pem': true,
      'real.pem': false,
    });
  });

  it('finds .git at any depth', () => {
    expect(table(['.git', '.git/config', 'sub/.git', 'sub/.gitignore', '.github/x'], isGitPath)).toEqual({
      '.git': true,
      '.git/config': true,
      'sub/.git': true,
      'sub/.gitignore': false,
      '.github/x': false,
    });
  });

  it('judges entry names and link targets', () => {
    expect(
      table(['a/b', './a', '../a', 'a/../../b', '/etc/passwd', 'C:/x', 'a..b'], unsafeEntryName),
    ).toEqual({
      'a/b': undefined,
      './a': undefined,
      '../a': "contains a '..' segment",
      'a/../../b': "contains a '..' segment",
      '/etc/passwd': 'is an absolute path',
      'C:/x': 'is an absolute path',
      'a..b': undefined,
    });
    expect(
      [
        ['a/link', '../b'],
        ['a/link', '../../b'],
        ['link', 'x/../..'],
        ['link', '/abs'],
        ['link', '.'],
      ].map(([p, t]) => unsafeLinkTarget(p ?? '', t ?? '') ?? 'ok'),
    ).toEqual([
      'ok',
      'points outside the template (../../b)',
      'points outside the template (x/../..)',
      'points at the absolute path /abs',
      'ok',
    ]);
  });
});
