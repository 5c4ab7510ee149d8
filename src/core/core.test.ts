import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sortedByBytes } from './byte-order.js';
import { exitCodeFor, isUnreachable, SlipwayError } from './errors.js';
import { ImageRef } from './image-ref.js';
import { Redactor, redactText } from './redact.js';
import { treeDigest } from './tree-digest.js';

const D = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('ImageRef', () => {
  it.each([
    [
      'molecule-ai/platform',
      { registry: undefined, repository: 'molecule-ai/platform', tag: undefined, digest: undefined },
    ],
    [
      '127.0.0.1:5000/molecule-ai/platform:staging-latest',
      {
        registry: '127.0.0.1:5000',
        repository: 'molecule-ai/platform',
        tag: 'staging-latest',
        digest: undefined,
      },
    ],
    [
      `123456789012.dkr.ecr.us-east-1.amazonaws.com/molecule-ai/molecule-platform-agent@${D}`,
      {
        registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
        repository: 'molecule-ai/molecule-platform-agent',
        tag: undefined,
        digest: D,
      },
    ],
    [`localhost/a:b@${D}`, { registry: 'localhost', repository: 'a', tag: 'b', digest: D }],
  ])('parses %s', (input, parts) => {
    const ref = ImageRef.parse(input);
    expect({ registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }).toEqual(
      parts,
    );
    expect(ref.toString()).toBe(input);
  });

  it.each([
    ['Molecule/Platform', /repository "Molecule\/Platform" must be lowercase/],
    ['a/b:bad tag', /tag "bad tag" must match/],
    ['a/b@sha256:1234', /digest "sha256:1234" is not sha256/],
    ['', /empty/],
  ])('refuses %j naming the problem', (input, problem) => {
    expect(() => ImageRef.parse(input)).toThrow(problem);
  });

  it('pins by digest, dropping the moving tag', () => {
    const ref = ImageRef.parse('127.0.0.1:5000/x/y:staging-latest').withDigest(D);
    expect(ref.toString()).toBe(`127.0.0.1:5000/x/y@${D}`);
    expect(ref.pinned).toBe(true);
  });
});

describe('Redactor', () => {
  it('removes registered secrets, their base64, URL user-info, auth headers and token params', () => {
    const r = new Redactor().add('s3cr3t-token');
    const b64 = Buffer.from('s3cr3t-token').toString('base64');
    expect(r.redact(`fatal: https://x:s3cr3t-token@git.example.com/a.git ${b64}`)).toBe(
      'fatal: https://***@git.example.com/a.git ***',
    );
    expect(redactText('Authorization: Bearer abc.def.ghi')).toBe('Authorization: Bearer ***');
    expect(redactText('GET /archive?access_token=abcdef&x=1')).toBe('GET /archive?access_token=***&x=1');
  });
});

describe('treeDigest', () => {
  const a = { path: 'config.yaml', type: 'file' as const, mode: 0o644, sha256: 'aa' };
  const b = { path: 'prompts/system.md', type: 'file' as const, mode: 0o600, sha256: 'bb' };
  it('is independent of entry order and of non-exec mode bits', () => {
    expect(treeDigest([a, b])).toBe(treeDigest([b, { ...a, mode: 0o600 }]));
  });
  it('changes with content, path and the executable bit', () => {
    const base = treeDigest([a, b]);
    expect(treeDigest([a, { ...b, sha256: 'bc' }])).not.toBe(base);
    expect(treeDigest([a, { ...b, path: 'prompts/other.md' }])).not.toBe(base);
    expect(treeDigest([a, { ...b, mode: 0o755 }])).not.toBe(base);
    expect(treeDigest([a])).not.toBe(base);
  });
  it("hashes the definition's lines in UTF-8 byte order, however many entries", () => {
    const names = ['b', 'a-b', 'a/b', '\uff01', '\u{1f600}', 'é', 'Z'];
    const entries = Array.from({ length: 3000 }, (_, i) => ({
      path: `${names[i % names.length]}/${i}`,
      type: i % 5 === 0 ? ('symlink' as const) : ('file' as const),
      mode: i % 2 ? 0o755 : 0o644,
      sha256: String(i).repeat(3),
    }));
    const definition = createHash('sha256');
    const byBytes = [...entries].sort((x, y) => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path)));
    for (const e of byBytes) {
      const mode = e.type === 'symlink' ? '120000' : e.mode & 0o100 ? '100755' : '100644';
      definition.update(`${e.path}\0${mode}\0${e.sha256}\n`);
    }
    expect(treeDigest(entries.reverse())).toBe(`sha256:${definition.digest('hex')}`);
  });
});

describe('sortedByBytes', () => {
  it('orders by UTF-8 bytes, also where UTF-16 code units order differently', () => {
    // U+FF01 is one code unit above the surrogates U+1F600 is written with, but below it in UTF-8.
    const items = ['\u{1f600}', '\uff01', 'a/b', 'a-b', 'a', 'é', 'Z'];
    const expected = ['Z', 'a', 'a-b', 'a/b', 'é', '\uff01', '\u{1f600}'];
    expect(sortedByBytes(items, (s) => s)).toEqual(expected);
    expect(sortedByBytes(['a/b', 'é', 'a-b', 'a'], (s) => s)).toEqual(['a', 'a-b', 'a/b', 'é']);
  });
});

describe('errors', () => {
  it('maps codes to exit codes', () => {
    expect([exitCodeFor('USAGE'), exitCodeFor('REGISTRY_UNREACHABLE'), exitCodeFor('GATE_REFUSED')]).toEqual([
      2, 3, 1,
    ]);
    expect(new SlipwayError('DATABASE_UNREACHABLE', 'x').exitCode).toBe(3);
  });
  it('recognises connection failures through cause chains', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isUnreachable(new Error('fetch failed', { cause: refused }))).toBe(true);
    expect(isUnreachable(new Error('HTTP 404'))).toBe(false);
    const noSocket = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), {
      code: 'ENOENT',
      syscall: 'connect',
    });
    const noFile = Object.assign(new Error('open ENOENT x'), { code: 'ENOENT', syscall: 'open' });
    expect([isUnreachable(noSocket), isUnreachable(noFile)]).toEqual([true, false]);
  });
});
