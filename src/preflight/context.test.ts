import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { extract, pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { writeTree } from '../../test/build/layout.js';
import { sha256Hex, treeDigest } from '../core/tree-digest.js';
import {
  type BuildContext,
  contextDigest,
  type ExtraEntry,
  packContext,
  parseDockerignore,
  readBuildContext,
} from './context.js';
import { CHUNK } from './context-tar.js';

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

  it('digests what is on disk now: files around the read size, links, files changed after listing', async () => {
    const mib = 1024 * 1024;
    const dir = writeTree({ empty: '', one: 'x', 'run.sh*': '#!/bin/sh', grows: 'abc', shrinks: 'abcdef' });
    for (const size of [mib - 1, mib, mib + 1, 3 * mib + 5]) {
      writeFileSync(path.join(dir, `f${size}`), Buffer.alloc(size, size % 251));
    }
    symlinkSync('one', path.join(dir, 'link'));
    const ctx = await readBuildContext(dir);
    writeFileSync(path.join(dir, 'grows'), 'abcd');
    writeFileSync(path.join(dir, 'shrinks'), 'ab');
    writeFileSync(path.join(dir, `f${mib}`), Buffer.alloc(mib + 2, 1));
    const naive = treeDigest(
      ctx.entries
        .filter((e) => e.type !== 'directory')
        .map((e) => ({
          path: e.path,
          type: e.type as 'file' | 'symlink',
          mode: e.mode,
          sha256: sha256Hex(e.type === 'file' ? readFileSync(e.abs) : Buffer.from(readlinkSync(e.abs))),
        })),
    );
    expect(await contextDigest(ctx)).toBe(naive);
  });
});

/** The tar the previous tar-stream implementation wrote for a context: the reference bytes. */
async function tarStreamReference(ctx: BuildContext, extra: readonly ExtraEntry[]): Promise<Buffer> {
  const tar = pack();
  const header = { uid: 0, gid: 0, uname: '', gname: '', mtime: new Date('1980-01-01T00:00:00Z') };
  const skip = new Set(extra.map((e) => e.path));
  const add = (h: Parameters<typeof tar.entry>[0], content?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content === undefined) tar.entry(h, cb);
      else tar.entry(h, content, cb);
    });
  const chunks: Buffer[] = [];
  tar.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => tar.on('end', () => resolve()));
  for (const e of extra) await add({ ...header, name: e.path, type: 'file', mode: 0o644 }, e.content);
  for (const e of ctx.entries.filter((x) => !skip.has(x.path))) {
    if (e.type === 'directory') await add({ ...header, name: e.path, type: 'directory', mode: e.mode });
    else if (e.type === 'symlink')
      await add({ ...header, name: e.path, type: 'symlink', mode: e.mode, linkname: readlinkSync(e.abs) });
    else await add({ ...header, name: e.path, type: 'file', mode: e.mode }, readFileSync(e.abs));
  }
  tar.finalize();
  await ended;
  return Buffer.concat(chunks);
}

describe('context tar', () => {
  it('writes the bytes tar-stream wrote: ustar prefixes, PAX names and links, UTF-8, large and empty files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-ctxtar-'));
    try {
      const deep = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
      mkdirSync(path.join(dir, deep), { recursive: true });
      writeFileSync(path.join(dir, deep, `${'f'.repeat(90)}.txt`), 'prefix split');
      mkdirSync(path.join(dir, 'x'.repeat(120)));
      writeFileSync(path.join(dir, 'x'.repeat(120), 'y'.repeat(101)), 'needs pax');
      writeFileSync(path.join(dir, 'héllo wörld.txt'), 'utf-8 name');
      writeFileSync(path.join(dir, 'empty'), '');
      writeFileSync(path.join(dir, 'odd'), 'x'.repeat(513));
      writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
      writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(2.5 * 1024 * 1024 + 7, 7));
      symlinkSync('run.sh', path.join(dir, 'short-link'));
      symlinkSync('t'.repeat(140), path.join(dir, 'long-link'));
      const ctx = await readBuildContext(dir);
      const extra = [{ path: 'Dockerfile', content: Buffer.from('FROM scratch\n') }];
      const ours = (await tarOf(packContext(ctx, extra))).bytes;
      expect(ours.equals(await tarStreamReference(ctx, extra))).toBe(true);
      expect((await tarOf(packContext(ctx))).entries).toContain(
        `${'x'.repeat(120)}/${'y'.repeat(101)} file 644 0:0 1980-01-01T00:00:00.000Z`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails the stream when a file changed size after it was listed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-ctxtar-'));
    try {
      writeFileSync(path.join(dir, 'small'), 'abc');
      writeFileSync(path.join(dir, 'large'), Buffer.alloc(3 * 1024 * 1024));
      const ctx = await readBuildContext(dir);
      writeFileSync(path.join(dir, 'small'), 'abcd');
      await expect(tarOf(packContext(ctx))).rejects.toMatchObject({
        code: 'BUILD_FAILED',
        message: expect.stringMatching(/small changed size while it was packed/),
      });
      writeFileSync(path.join(dir, 'small'), 'abc');
      writeFileSync(path.join(dir, 'large'), Buffer.alloc(3 * 1024 * 1024 + 1));
      await expect(tarOf(packContext(ctx))).rejects.toThrow(/large changed size while it was packed/);
      writeFileSync(path.join(dir, 'large'), Buffer.alloc(2 * 1024 * 1024));
      await expect(tarOf(packContext(ctx))).rejects.toThrow(/large changed size while it was packed/);
      // A file whose header and content fill the first chunk exactly: no room for the extra byte,
      // so the end of the file is checked with a read of its own.
      rmSync(path.join(dir, 'large'));
      rmSync(path.join(dir, 'small'));
      writeFileSync(path.join(dir, 'exact'), Buffer.alloc(CHUNK - 512, 3));
      const exact = await readBuildContext(dir);
      expect((await tarOf(packContext(exact))).bytes.equals(await tarStreamReference(exact, []))).toBe(true);
      writeFileSync(path.join(dir, 'exact'), Buffer.alloc(CHUNK - 511, 3));
      await expect(tarOf(packContext(exact))).rejects.toThrow(/exact changed size while it was packed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
