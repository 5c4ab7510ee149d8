import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TarEntry as Entry, makeTar } from '../../test/support/tar.js';
import { TeedArchive } from './system-tar.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-systar-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The system tools, asserted present: the test machine must have them. */
async function tools(env: NodeJS.ProcessEnv): Promise<void> {
  if (!(await TeedArchive.usable(env)))
    throw new Error('no GNU tar or bsdtar, GNU tee and /dev/fd: the test machine must have them');
}

/** `cat` of the archive of `entries`, teed into tar writing `<dir>/out`; returns the bytes passed on and tar's exit code. */
async function write(entries: Entry[], strip = 0, copy?: string): Promise<{ passed: Buffer; code: number }> {
  const dest = path.join(dir, 'out');
  mkdirSync(dest);
  const archive = await makeTar(entries);
  const file = path.join(dir, 'archive.tar');
  writeFileSync(file, archive);
  const env = { PATH: process.env.PATH };
  await tools(env);
  const teed = TeedArchive.open(dest, strip, ['cat', file], env, {
    signal: new AbortController().signal,
    copy,
    quietMs: 30_000,
  });
  const chunks: Buffer[] = [];
  for await (const c of teed.stdout) chunks.push(c as Buffer);
  const passed = Buffer.concat(chunks);
  expect(passed.equals(archive)).toBe(true);
  const result = await teed.result();
  expect(result.producer).toBe(0);
  leftBehind(['archive.tar', 'out', 'copy']);
  return { passed, code: result.tar };
}

describe('TeedArchive (the system tar writing while the checks read the same bytes)', () => {
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

/** Fails when `dir` holds anything but `allowed` (no FIFO or other scratch beside the destination). */
function leftBehind(allowed: string[]): void {
  expect(readdirSync(dir).filter((name) => !allowed.includes(name))).toEqual([]);
}

/** The live processes (command names) of process group `pgid`. */
function members(pgid: string): string[] {
  return execFileSync('ps', ['-eo', 'pgid=,stat=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([group, stat]) => group === pgid && !stat?.startsWith('Z'))
    .map(([, , comm]) => comm ?? '');
}

/** The process group of the tar writing into `dest` (found by its `-C dest`), once tar runs. */
async function groupOf(dest: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const lines = execFileSync('ps', ['-eo', 'pgid=,args='], { encoding: 'utf8' }).split('\n');
    const tar = lines.find((line) => line.includes(`tar -x -f - -C ${dest} `));
    if (tar) return tar.trim().split(/\s+/)[0] ?? '';
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no tar writing into ${dest}`);
}

/** `members(pgid)` once it is empty, or as it is after 5 s. */
async function membersOnceGone(pgid: string): Promise<string[]> {
  for (let i = 0; i < 100 && members(pgid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  return members(pgid);
}

describe('TeedArchive when something stops', () => {
  it('passes every byte on when tar stops early, and reports both exit codes and messages', async () => {
    const dest = path.join(dir, 'out');
    mkdirSync(dest);
    const file = path.join(dir, 'not-a-tar');
    writeFileSync(file, Buffer.alloc(300_000, 0x61));
    const env = { PATH: process.env.PATH };
    await tools(env);
    const teed = TeedArchive.open(dest, 0, ['sh', '-c', 'cat "$0"; echo oops >&2; exit 3', file], env, {
      signal: new AbortController().signal,
      quietMs: 30_000,
    });
    let bytes = 0;
    for await (const c of teed.stdout) bytes += (c as Buffer).length;
    const result = await teed.result();
    expect(bytes).toBe(300_000);
    expect(result).toMatchObject({ producer: 3, producerStderr: 'oops\n' });
    expect(result.tar).not.toBe(0);
    expect(result.tarStderr).toMatch(/tar/);
    leftBehind(['out', 'not-a-tar']);
  });

  it('passes every byte on to the checks when tar exits without reading any', async () => {
    // A tar that refuses at once: tee's writes to it fail (EPIPE) after a pipe's worth at most.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'tar'), '#!/bin/sh\necho "tar: refused at once" >&2\nexit 2\n', {
      mode: 0o755,
    });
    const dest = path.join(dir, 'out');
    mkdirSync(dest);
    const teed = TeedArchive.open(
      dest,
      0,
      ['head', '-c', '300000', '/dev/zero'],
      { PATH: `${bin}:${process.env.PATH}` },
      { signal: new AbortController().signal, quietMs: 30_000 },
    );
    let bytes = 0;
    for await (const c of teed.stdout) bytes += (c as Buffer).length;
    expect({ bytes, result: await teed.result() }).toEqual({
      bytes: 300_000,
      result: { producer: 0, producerStderr: '', tar: 2, tarStderr: 'tar: refused at once\n' },
    });
  });

  it('stops the producer, tee and tar together when aborted, leaving no process and no file behind', async () => {
    const dest = path.join(dir, 'out');
    mkdirSync(dest);
    const env = { PATH: process.env.PATH };
    await tools(env);
    const abort = new AbortController();
    // A producer that never ends by itself.
    const teed = TeedArchive.open(dest, 0, ['sleep', '600'], env, { signal: abort.signal, quietMs: 30_000 });
    teed.stdout.resume();
    const pgid = await groupOf(dest);
    expect(members(pgid)).toEqual(expect.arrayContaining(['sh', 'sleep', 'tee', 'tar']));
    const started = Date.now();
    abort.abort();
    const result = await teed.result();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.producer).not.toBe(0);
    expect(await membersOnceGone(pgid)).toEqual([]);
    leftBehind(['out']);
  });

  it('stops everything and says so when the archive makes no progress', async () => {
    const dest = path.join(dir, 'out');
    mkdirSync(dest);
    const env = { PATH: process.env.PATH };
    await tools(env);
    const signal = new AbortController().signal;
    const teed = TeedArchive.open(dest, 0, ['sleep', '601'], env, { signal, quietMs: 300 });
    teed.stdout.resume();
    const started = Date.now();
    const result = await teed.result();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.producer).not.toBe(0);
    expect(result.producerStderr).toContain('no progress for 300ms');
    expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toMatch(/^sleep 601$/m);
    leftBehind(['out']);
  });
});

describe('TeedArchive.usable', () => {
  it('says no without a tar on PATH, and yes with the system tools', async () => {
    const bin = path.join(dir, 'only-tee');
    mkdirSync(bin);
    const tee = execFileSync('sh', ['-c', 'command -v tee'], { encoding: 'utf8' }).trim();
    symlinkSync(tee, path.join(bin, 'tee'));
    expect({
      withoutTar: await TeedArchive.usable({ PATH: bin }),
      system: await TeedArchive.usable({ PATH: process.env.PATH }),
    }).toEqual({ withoutTar: false, system: true });
  });
});

describe('TeedArchive with a copy to link', () => {
  it('hard-links the written tree to the copy path once tar succeeded', async () => {
    const copy = path.join(dir, 'copy');
    const { code } = await write(
      [
        { name: 'config.yaml', body: 'name: a\n' },
        { name: 'deep/er/file.md', body: 'x' },
        { name: 'current.md', type: 'symlink', linkname: 'config.yaml' },
      ],
      0,
      copy,
    );
    expect(code).toBe(0);
    const out = path.join(dir, 'out');
    expect(lstatSync(path.join(copy, 'deep/er/file.md')).ino).toBe(
      lstatSync(path.join(out, 'deep/er/file.md')).ino,
    );
    expect(readlinkSync(path.join(copy, 'current.md'))).toBe('config.yaml');
  });

  it('leaves no copy when tar failed', async () => {
    const copy = path.join(dir, 'copy');
    const { code } = await write(
      [
        { name: 'a', body: 'first' },
        { name: 'a', body: 'second' },
      ],
      0,
      copy,
    );
    expect(code).not.toBe(0);
    expect(existsSync(copy)).toBe(false);
  });
});
