import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatCommand, formatOutput } from './format.js';
import { lineOfJsonPath, locateDetail, splitJsonPath } from './locate.js';

const manifest = `{
  "version": 1,
  "templates": {
    "platform-agent": {
      "source": { "git": "x" },
      "ref": "main"
    }
  },
  "images": {
    "a": { "smoke": { "assertions": [
      { "kind": "path" },
      { "kind": "exec" }
    ] } }
  }
}
`;

describe('Actions formats', () => {
  it('writes an output as a heredoc whose delimiter the value cannot close', () => {
    const text = formatOutput('digests', '{"a":"sha256:1"}\nsecond line');
    const m = /^digests<<(ghadelimiter_[0-9a-f-]{36})\n([\s\S]*)\n\1\n$/.exec(text);
    expect(m?.[2]).toBe('{"a":"sha256:1"}\nsecond line');
  });

  it('escapes workflow command data and properties as @actions/core does', () => {
    expect(formatCommand('error', 'bad 100%\nnext', { file: 'a,b:c', line: 3, title: 'x: y' })).toBe(
      '::error file=a%2Cb%3Ac,line=3,title=x%3A y::bad 100%25%0Anext',
    );
    expect(formatCommand('endgroup', '')).toBe('::endgroup::');
  });
});

describe('locating a detail', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-locate-'));
  const file = path.join(dir, 'sub', 'manifest.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('splits JSON paths into keys and indexes', () => {
    expect(splitJsonPath('images.a.smoke.assertions[1].kind')).toEqual([
      'images',
      'a',
      'smoke',
      'assertions',
      1,
      'kind',
    ]);
  });

  it('finds the line of a key, of an array element, and of the parent of a missing key', () => {
    expect(lineOfJsonPath(manifest, 'templates.platform-agent.ref')).toEqual({ line: 6, col: 7 });
    expect(lineOfJsonPath(manifest, 'images.a.smoke.assertions[1].kind').line).toBe(12);
    expect(lineOfJsonPath(manifest, 'templates.platform-agent.include').line).toBe(4);
  });

  it('makes manifest and Dockerfile locations relative to the workspace', () => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, manifest);
    expect(locateDetail('templates.platform-agent.ref', file, dir)).toEqual({
      file: 'sub/manifest.json',
      line: 6,
      col: 7,
    });
    expect(locateDetail('dockerfiles/Dockerfile.x:32', file, dir)).toEqual({
      file: 'sub/dockerfiles/Dockerfile.x',
      line: 32,
    });
  });
});
