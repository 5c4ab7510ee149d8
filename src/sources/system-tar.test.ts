import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TarEntry as Entry, makeTar } from '../../test/support/tar.js';
import { TarWriter } from './system-tar.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-systar-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Streams `entries` through a TarWriter into `<dir>/out`; returns the bytes passed on and tar's exit code. */
async function write(entries: Entry[], strip = 0): Promise<{ passed: Buffer; code: number }> {
  const dest = path.join(dir, 'out');
  mkdirSync(dest);
  const writer = TarWriter.open(dest, strip, {});
  if (!writer) throw new Error('no GNU tar or bsdtar on PATH: the test machine must have one');
  const archive = await makeTar(entries);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([archive]), writer, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) chunks.push(c);
  });
  const passed = Buffer.concat(chunks);
  expect(passed.equals(archive)).toBe(true);
  return { passed, code: (await writer.result()).code };
}

describe('TarWriter (the system tar writing while the checks read)', () => {
  it('writes files, modes and symlinks below the stripped directory, and passes every byte on', async () => {
    const { code } = await write(
      [
        { name: 'top/', type: 'directory' },
        { name: 'top/config.yaml', body: 'name: a\n', mode: 0o664, mtime: new Date(0) },
        { name: 'top/bin/run.sh', body: '#!/bin/sh\n', mode: 0o775 },
        { name: 'top/current.md', type: 'symlink', linkname: 'config.yaml' },
      ],
      1,
    );
    const out = path.join(dir, 'out');
    expect(code).toBe(0);
    expect({
      config: readFileSync(path.join(out, 'config.yaml'), 'utf8'),
      exec: (lstatSync(path.join(out, 'bin/run.sh')).mode & 0o100) !== 0,
      plain: (lstatSync(path.join(out, 'config.yaml')).mode & 0o100) !== 0,
      link: readlinkSync(path.join(out, 'current.md')),
      // -m: the archive's times are not applied.
      fresh: lstatSync(path.join(out, 'config.yaml')).mtimeMs > Date.now() - 60_000,
    }).toEqual({ config: 'name: a\n', exec: true, plain: false, link: 'config.yaml', fresh: true });
  });

  it('fails, writing nothing outside, on a write through an in-tree symlink chain that leads out', async () => {
    const { code } = await write([
      { name: 's', type: 'symlink', linkname: '.' },
      { name: 'up', type: 'symlink', linkname: 's/..' },
      { name: 'up/escaped', body: 'x' },
    ]);
    expect(code).not.toBe(0);
    expect(existsSync(path.join(dir, 'escaped'))).toBe(false);
  });

  it('fails on a member that would replace a file already written', async () => {
    const { code } = await write([
      { name: 'a', body: 'first' },
      { name: 'a', body: 'second' },
    ]);
    expect(code).not.toBe(0);
    expect(readFileSync(path.join(dir, 'out', 'a'), 'utf8')).toBe('first');
  });
});
