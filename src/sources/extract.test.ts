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
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TarEntry as Entry, makeTar } from '../../test/support/tar.js';
import { isSlipwayError } from '../core/errors.js';
import { sha256Hex } from '../core/tree-digest.js';
import { extractTar } from './extract.js';
import { materialiseInPlace, type SelectionOptions, TreeRecorder } from './tree.js';

async function refusal(
  entries: Entry[],
  opts: { strip?: number; checkOnly?: boolean } = {},
): Promise<Record<string, unknown>> {
  const dest = path.join(dir, opts.checkOnly ? 'checked' : 'out');
  try {
    await extractTar(Readable.from([await makeTar(entries)]), dest, { subject: 'agent', ...opts });
  } catch (err) {
    if (!isSlipwayError(err)) throw err;
    return { code: err.code, message: err.message, resource: err.resource };
  }
  return { code: 'none' };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-extract-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('extractTar', () => {
  it('unpacks files, directories, executables and in-tree symlinks, normalising modes', async () => {
    const archive = await makeTar([
      { name: 'wrap/', type: 'directory' },
      { name: 'wrap/config.yaml', body: 'name: a\n', mode: 0o664 },
      { name: 'wrap/bin/run.sh', body: '#!/bin/sh\n', mode: 0o775 },
      { name: 'wrap/prompts/current.md', type: 'symlink', linkname: '../config.yaml' },
    ]);
    const dest = path.join(dir, 'out');
    const result = await extractTar(Readable.from([gzipSync(archive)]), dest, {
      subject: 'a',
      gzip: true,
      strip: 1,
    });
    expect(result).toEqual({ entries: 3, subdirFound: true });
    expect({
      config: readFileSync(path.join(dest, 'config.yaml'), 'utf8'),
      configMode: lstatSync(path.join(dest, 'config.yaml')).mode & 0o777,
      runMode: lstatSync(path.join(dest, 'bin/run.sh')).mode & 0o777,
      link: readlinkSync(path.join(dest, 'prompts/current.md')),
    }).toEqual({ config: 'name: a\n', configMode: 0o644, runMode: 0o755, link: '../config.yaml' });
  });

  it('keeps only the subdir, re-rooted', async () => {
    const archive = await makeTar([
      { name: 'top/README.md', body: 'x' },
      { name: 'top/templates/agent/', type: 'directory' },
      { name: 'top/templates/agent/config.yaml', body: 'y' },
    ]);
    const dest = path.join(dir, 'out');
    const result = await extractTar(Readable.from([archive]), dest, {
      subject: 'a',
      strip: 1,
      subdir: 'templates/agent',
    });
    expect([
      existsSync(path.join(dest, 'README.md')),
      readFileSync(path.join(dest, 'config.yaml'), 'utf8'),
    ]).toEqual([false, 'y']);
    expect(result.subdirFound).toBe(true);
  });

  it('says when the archive has no such subdir', async () => {
    const archive = await makeTar([
      { name: 'top/README.md', body: 'x' },
      { name: 'top/templates/other/config.yaml', body: 'y' },
    ]);
    const result = await extractTar(Readable.from([archive]), path.join(dir, 'none'), {
      subject: 'a',
      strip: 1,
      subdir: 'templates/agent',
    });
    expect(result).toEqual({ entries: 0, subdirFound: false });
  });

  const hint = 'archive entry';
  it.each<[string, Entry[], string]>([
    [
      'a .. segment',
      [{ name: '../x', body: 'evil' }],
      `template "agent": ${hint} "../x" contains a '..' segment`,
    ],
    [
      'an absolute path',
      [{ name: '/etc/passwd', body: 'root::0:0' }],
      `template "agent": ${hint} "/etc/passwd" is an absolute path`,
    ],
    [
      'a symlink leading outside',
      [{ name: 'link', type: 'symlink', linkname: '../../outside' }],
      `template "agent": ${hint} "link" is a symlink that points outside the template (../../outside)`,
    ],
    [
      'an absolute symlink',
      [{ name: 'link', type: 'symlink', linkname: '/etc/shadow' }],
      `template "agent": ${hint} "link" is a symlink that points at the absolute path /etc/shadow`,
    ],
    [
      'a hard link',
      [
        { name: 'a', body: 'x' },
        { name: 'b', type: 'link', linkname: 'a' },
      ],
      `template "agent": ${hint} "b" is a hard link (to a)`,
    ],
    [
      'a character device',
      [{ name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 }],
      `template "agent": ${hint} "tty" is a device file`,
    ],
    ['a fifo', [{ name: 'pipe', type: 'fifo' }], `template "agent": ${hint} "pipe" is a fifo`],
    [
      'a duplicate entry',
      [
        { name: 'a', body: 'x' },
        { name: 'a', body: 'y' },
      ],
      `template "agent": ${hint} "a" appears twice in the archive`,
    ],
    [
      'a write through an in-tree symlink chain that leads outside',
      [
        { name: 's', type: 'symlink', linkname: '.' },
        { name: 'up', type: 'symlink', linkname: 's/..' },
        { name: 'up/escaped', body: 'x' },
      ],
      `template "agent": ${hint} "up/escaped" would be written through a symlink that leads outside the template`,
    ],
  ])('refuses %s with STAGING_REFUSED naming the entry', async (what, entries, message) => {
    const result = await refusal(entries);
    expect(result).toEqual({ code: 'STAGING_REFUSED', message, resource: expect.any(String) });
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
    expect(existsSync(path.join(dir, 'escaped'))).toBe(false);
    // Checking only (a system tar writes): the same refusal, and nothing written here. Only a
    // write through a symlink is the writer's own to refuse (system-tar.test.ts).
    if (what.startsWith('a write through')) return;
    expect(await refusal(entries, { checkOnly: true })).toEqual(result);
    expect(readdirSync(path.join(dir, 'checked'))).toEqual([]);
  });

  it('refuses an archive with more than one top-level directory when stripping', async () => {
    expect(
      await refusal(
        [
          { name: 'one/a', body: 'x' },
          { name: 'two/b', body: 'y' },
        ],
        { strip: 1 },
      ),
    ).toEqual({
      code: 'STAGING_REFUSED',
      message: `template "agent": archive entry "two/b" is outside the archive's single top-level directory "one"`,
      resource: 'two/b',
    });
  });

  it('reports a truncated archive as a fetch failure', async () => {
    const archive = await makeTar([{ name: 'a', body: 'x'.repeat(2000) }]);
    const dest = path.join(dir, 'out');
    await expect(
      extractTar(Readable.from([archive.subarray(0, 1000)]), dest, { subject: 'agent' }),
    ).rejects.toMatchObject({ code: 'SOURCE_FETCH_FAILED' });
  });
});

describe('a TreeRecorder fed by extractTar (single pass)', () => {
  // Token-shaped strings are assembled here so no literal token sits in the source.
  const token = `${'ghp_'}${'A1b2C3d4'.repeat(4)}abcd`;
  const big = 'x'.repeat(1024 * 1024 + 17);
  const entries: Entry[] = [
    { name: 'config.yaml', body: 'name: a\n' },
    { name: 'a-b', body: 'dash sorts before slash by bytes, after it in the walk' },
    { name: 'a/', type: 'directory' },
    { name: 'a/x.md', body: `key: ${token}\nok: 1\nagain: ${token}\n` },
    { name: 'a/.env', body: 'A=1\n' },
    { name: 'bin/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
    { name: 'bin/.npmrc', body: '//registry.example/:_authToken=abc\n' },
    { name: 'data/big.bin', body: big },
    { name: 'prompts/current.md', type: 'symlink', linkname: '../config.yaml' },
  ];

  async function both(options: SelectionOptions): Promise<[unknown, unknown]> {
    const dest = path.join(dir, `t-${options.sensitive}`);
    const recorder = new TreeRecorder(options);
    await extractTar(Readable.from([await makeTar(entries)]), dest, { subject: 'agent', observer: recorder });
    const settle = async (f: () => unknown) => {
      try {
        return await f();
      } catch (err) {
        return isSlipwayError(err) ? { code: err.code, message: err.message, details: err.details } : err;
      }
    };
    return [await settle(() => recorder.result(dest)), await settle(() => materialiseInPlace(dest, options))];
  }

  it('gives what walking and reading back the written tree gives: digests, counts, findings in walk order', async () => {
    const [recorded, walked] = await both({
      subject: 'agent',
      sensitive: 'warn',
      allowSensitive: ['bin/.npmrc'],
    });
    expect(recorded).toEqual(walked);
    expect(recorded).toMatchObject({
      files: 8,
      sensitiveStaged: ['a/.env', 'a/x.md:1', 'a/x.md:3'],
      allowedSensitive: [{ at: 'bin/.npmrc' }],
    });
  });

  it('reports the same files and hashes without writing them when another process writes (checkOnly)', async () => {
    const seen = async (checkOnly: boolean) => {
      const calls: string[] = [];
      const observer = {
        file: (rel: string, mode: number, size: number, sha256: string) =>
          calls.push(`${rel} ${mode.toString(8)} ${size} ${sha256}`),
        symlink: (rel: string, target: string) => calls.push(`${rel} -> ${target}`),
        end: () => calls.push('end'),
        restart: () => calls.push('restart'),
      };
      const dest = path.join(dir, checkOnly ? 'checked' : 'written');
      await extractTar(Readable.from([await makeTar(entries)]), dest, {
        subject: 'agent',
        observer,
        checkOnly,
      });
      return { calls, files: readdirSync(dest).length };
    };
    const written = await seen(false);
    const checked = await seen(true);
    expect(checked.calls).toEqual(written.calls);
    expect(checked.calls).toContain(`data/big.bin 644 ${big.length} ${sha256Hex(big)}`);
    expect([written.files > 0, checked.files]).toEqual([true, 0]);
  });

  it('refuses exactly as the walk does', async () => {
    const [recorded, walked] = await both({ subject: 'agent', sensitive: 'refuse' });
    expect(recorded).toEqual(walked);
    expect(recorded).toMatchObject({ code: 'STAGING_REFUSED' });
  });

  it('stands aside for a template that selects files, and forgets a restarted tree', async () => {
    const selecting = new TreeRecorder({ subject: 'agent', include: ['config.yaml'] });
    expect(selecting.applies).toBe(false);
    const recorder = new TreeRecorder({ subject: 'agent' });
    recorder.file('stale.md', 0o644, 1, 'f'.repeat(64), Buffer.from('x'));
    recorder.end();
    recorder.restart();
    expect(recorder.result(dir)).toBeNull();
  });
});

describe('the check-only reader (another process writes)', () => {
  /** Every observer call, in order, for `archive` fed in chunks of `size` bytes. */
  async function observed(archive: Buffer, checkOnly: boolean, size = archive.length): Promise<string[]> {
    const calls: string[] = [];
    const observer = {
      file: (rel: string, mode: number, n: number, sha256: string, content: Buffer | undefined) =>
        calls.push(
          `${rel} ${mode.toString(8)} ${n} ${sha256} ${content === undefined ? 'streamed' : 'whole'}`,
        ),
      symlink: (rel: string, target: string) => calls.push(`${rel} -> ${target}`),
      end: () => calls.push('end'),
      restart: () => calls.push('restart'),
    };
    const chunks: Buffer[] = [];
    for (let at = 0; at < archive.length; at += size) chunks.push(archive.subarray(at, at + size));
    const dest = path.join(dir, `${checkOnly ? 'checked' : 'written'}-${size}`);
    await extractTar(Readable.from(chunks), dest, { subject: 'agent', observer, checkOnly });
    return calls;
  }

  it('reports what the writing path reports however the bytes are cut: pax names, long links, empty and large files', async () => {
    const archive = await makeTar([
      { name: `deep/${'d'.repeat(120)}/${'n'.repeat(110)}.md`, body: 'long name\n' },
      { name: 'héllo wörld.txt', body: 'non-ASCII name\n' },
      { name: 'empty', body: '' },
      { name: 'bin/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
      { name: 'link', type: 'symlink', linkname: `deep/${'d'.repeat(120)}/${'n'.repeat(110)}.md` },
      { name: 'big.bin', body: 'y'.repeat(1024 * 1024 + 3) },
      { name: 'after-big', body: 'z' },
    ]);
    const written = await observed(archive, false);
    expect(written).toHaveLength(8); // seven entries, then the end
    expect(written).toContain(
      `big.bin 644 ${1024 * 1024 + 3} ${sha256Hex('y'.repeat(1024 * 1024 + 3))} streamed`,
    );
    for (const size of [archive.length, 1, 7, 511, 513, 65_536]) {
      expect(await observed(archive, true, size)).toEqual(written);
    }
  });

  it('reads GNU long names and stops at the end-of-archive block as GNU tar does', async () => {
    const src = path.join(dir, 'src');
    const long = `${'l'.repeat(150)}.txt`;
    mkdirSync(src);
    writeFileSync(path.join(src, long), 'gnu long name\n');
    writeFileSync(path.join(src, 'short'), 'short\n');
    const gnu = execFileSync('tar', ['--format=gnu', '-c', '-f', '-', '-C', src, long, 'short']);
    expect(gnu.includes('././@LongLink')).toBe(true);
    const calls = await observed(gnu, true, 100);
    expect(calls).toEqual(await observed(gnu, false));
    expect(calls.map((c) => c.split(' ')[0])).toEqual([long, 'short', 'end']);
    // Entries after the end-of-archive blocks are not read: GNU tar does not write them either.
    const trailing = Buffer.concat([gnu, await makeTar([{ name: 'smuggled', body: 'x' }])]);
    expect((await observed(trailing, true)).map((c) => c.split(' ')[0])).toEqual([long, 'short', 'end']);
  });

  it('reports a truncated or damaged archive as a fetch failure', async () => {
    const archive = await makeTar([
      { name: 'a', body: 'x'.repeat(2000) },
      { name: 'b', body: 'y' },
    ]);
    const damaged = Buffer.from(archive);
    damaged[512 + 2048 + 10] = 0x41; // a byte of the second header's name: its checksum no longer holds
    for (const bad of [archive.subarray(0, 1000), archive.subarray(0, 700), damaged]) {
      await expect(
        extractTar(Readable.from([bad]), path.join(dir, 'checked'), { subject: 'agent', checkOnly: true }),
      ).rejects.toMatchObject({ code: 'SOURCE_FETCH_FAILED' });
    }
  });
});
