import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { writeTree } from '../../test/build/layout.js';
import { contextDigest, packContext, parseDockerignore, readBuildContext } from './context.js';

async function tarOf(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; entries: string[] }> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  const entries: string[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, s, next) => {
      entries.push(`${h.name} ${h.type} ${h.mode?.toString(8)} ${h.uid}:${h.gid} ${h.mtime?.toISOString()}`);
      s.on('end', next);
      s.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return { bytes, entries };
}

describe('build context', () => {
  it('reads .dockerignore like the docker CLI: comments, leading slash, exceptions', () => {
    expect(parseDockerignore('# c\n\n/node_modules/\n!keep/me\n  *.log  \n./x\n')).toEqual([
      'node_modules',
      '!keep/me',
      '*.log',
      'x',
    ]);
  });

  it('lists what the engine receives after .dockerignore, re-entering excluded dirs for exceptions', async () => {
    const dir = writeTree({
      '.dockerignore': '*\n!dockerfiles\n!staged\nstaged/**/staged.lock.json\n',
      'dockerfiles/Dockerfile': 'FROM scratch',
      'dockerfiles/run.sh*': '#!/bin/sh',
      'node_modules/x/index.js': 'x',
      'staged/t/config.yaml': 'name: t',
      'staged/staged.lock.json': '{}',
      'src/index.ts': '',
    });
    symlinkSync('run.sh', path.join(dir, 'dockerfiles/link'));
    const ctx = await readBuildContext(dir);
    expect(ctx.entries.map((e) => `${e.path} ${e.type} ${e.mode.toString(8)}`)).toEqual([
      'dockerfiles directory 755',
      'dockerfiles/Dockerfile file 644',
      'dockerfiles/link symlink 777',
      'dockerfiles/run.sh file 755',
      'staged directory 755',
      'staged/t directory 755',
      'staged/t/config.yaml file 644',
    ]);
  });

  it('packs deterministically (byte-equal tars, root-owned, fixed mtimes); the digest ignores excluded files', async () => {
    const files = { '.dockerignore': 'secret\n', 'a/b.txt': 'b', 'run.sh*': '#!/bin/sh', secret: 'k' };
    const one = await readBuildContext(writeTree(files));
    const two = await readBuildContext(writeTree({ ...files, secret: 'changed' }));
    const extra = [{ path: 'Dockerfile', content: Buffer.from('FROM scratch\n') }];
    const [t1, t2] = [await tarOf(packContext(one, extra)), await tarOf(packContext(two, extra))];
    expect(t1.bytes.equals(t2.bytes)).toBe(true);
    expect(t1.entries).toEqual([
      'Dockerfile file 644 0:0 1980-01-01T00:00:00.000Z',
      '.dockerignore file 644 0:0 1980-01-01T00:00:00.000Z',
      'a directory 755 0:0 1980-01-01T00:00:00.000Z',
      'a/b.txt file 644 0:0 1980-01-01T00:00:00.000Z',
      'run.sh file 755 0:0 1980-01-01T00:00:00.000Z',
    ]);
    expect(await contextDigest(one)).toBe(await contextDigest(two));
    const three = await readBuildContext(writeTree({ ...files, 'a/b.txt': 'B' }));
    expect(await contextDigest(three)).not.toBe(await contextDigest(one));
  });
});
