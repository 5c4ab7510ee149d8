import { describe, expect, it } from 'vitest';
import { isPlaceholder, SCAN_MAX_BYTES, scanContent } from './content-scan.js';

// Random-looking bodies built at run time, so this file holds no literal token.
const rnd = (n: number, upper = false): string => {
  const s = 'Zq8Lm3Xv9Tk2Wp7Rb4Ny6Hs1Jd5Gf0CeUaQiOoPyEt'.repeat(4).slice(0, n);
  return upper ? s.toUpperCase() : s;
};
const pemBody = `MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC${rnd(13)}`;

describe('scanContent finds every credential format, by line, without its value', () => {
  it.each([
    ['a GitHub token', `token = ${'ghp_'}${rnd(36)}`],
    ['a GitHub token', `GH=${'gho_'}${rnd(36)}`],
    ['a GitHub token', `${'ghs_'}${rnd(36)}`],
    ['a GitHub token', `pat: ${'github_pat_'}${rnd(22)}_${rnd(59)}`],
    ['a GitLab token', `CI_TOKEN=${'glpat-'}${rnd(20)}`],
    ['an npm token', `//registry.npmjs.org/:_authToken=${'npm_'}${rnd(36)}`],
    ['an AWS access key', `aws_access_key_id = ${'AKIA'}${rnd(16, true)}`],
    ['an AWS access key', `"AccessKeyId": "${'ASIA'}${rnd(16, true)}"`],
    ['a Slack token', `SLACK=${'xoxb-'}1234567890-${rnd(24)}`],
    ['a URL with a password or token', `url: https://deploy:${rnd(20)}@git.example.com/org/repo.git`],
    ['a URL with a password or token', `DATABASE_URL=postgres://app:${rnd(12)}@db:5432/app`],
  ])('%s: %s', (what, line) => {
    const found = scanContent(`# config\n\n${line}\nother: 1\n`);
    expect(found).toEqual([{ line: 3, what }]);
    expect(JSON.stringify(found)).not.toContain(rnd(12));
  });

  it('finds a private-key PEM block (RSA, EC, OPENSSH, PKCS#8)', () => {
    for (const kind of ['RSA ', 'EC ', 'OPENSSH ', '', 'ENCRYPTED ']) {
      const text = `x\n-----BEGIN ${kind}PRIVATE KEY-----\n${pemBody}\n-----END ${kind}PRIVATE KEY-----\n`;
      expect(scanContent(text)).toEqual([{ line: 2, what: 'a private key' }]);
    }
  });

  it('reports each line, and reads a Buffer', () => {
    const text = `a=${'ghp_'}${rnd(36)}\nb=2\nc=${'npm_'}${rnd(36)}\n`;
    expect(scanContent(Buffer.from(text))).toEqual([
      { line: 1, what: 'a GitHub token' },
      { line: 3, what: 'an npm token' },
    ]);
  });
});

describe('scanContent lets look-alikes pass', () => {
  it.each([
    ['a placeholder GitHub token', 'token: ghp_xxx'],
    ['a repeated-character token', `token: ghp_${'x'.repeat(36)}`],
    ['a short AWS example', 'AKIAEXAMPLE'],
    ["AWS's documented example key", `${'AKIA'}IOSFODNN7EXAMPLE`],
    ['a URL without a password', 'repo: https://user@git.example.com/org/repo.git'],
    ['a URL without user info', 'https://registry.npmjs.org/'],
    [
      'a dollar-brace TOKEN reference',
      `url: https://x-access-token:${'$'}{GITHUB_TOKEN}@github.com/org/repo`,
    ],
    ['a $TOKEN reference', 'git clone https://ci:$CI_JOB_TOKEN@gitlab.example.com/g/p.git'],
    ['a <token> placeholder', 'https://user:<token>@host/path'],
    ['a {{ }} template', 'https://user:{{ token }}@host/path'],
    ['a literal password word', 'https://user:password@host/path'],
    ['an npm token from the environment', `//registry.npmjs.org/:_authToken=${'$'}{NPM_TOKEN}`],
    ['a port, not a password', 'http://localhost:8080/health'],
    ['a public key', `-----BEGIN PUBLIC KEY-----\n${pemBody}\n-----END PUBLIC KEY-----`],
    ['a certificate', `-----BEGIN CERTIFICATE-----\n${pemBody}\n-----END CERTIFICATE-----`],
    ['a private-key header in prose', 'a key starts with -----BEGIN PRIVATE KEY-----\n...\n'],
    ['an ssh public key', `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${rnd(30)} me@host`],
    ['a git sha', `ref: ${'a1b2c3d4e5'.repeat(4)}`],
  ])('%s', (_what, text) => {
    expect(scanContent(text)).toEqual([]);
  });

  it('skips binary files and files over the size cap', () => {
    const token = `${'ghp_'}${rnd(36)}`;
    expect(scanContent(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(token)]))).toEqual([]);
    expect(scanContent(`${token}\n${' '.repeat(SCAN_MAX_BYTES)}`)).toEqual([]);
  });
});

describe('isPlaceholder', () => {
  it('tells references and filler from random values', () => {
    expect(
      [`${'$'}{TOKEN}`, '$TOKEN', '%s', '<pw>', '***', 'changeme', 'xxxxxxxx'].map(isPlaceholder),
    ).toEqual(Array(7).fill(true));
    expect(isPlaceholder(rnd(20))).toBe(false);
  });
});
