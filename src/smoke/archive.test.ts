import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/support/temp.js';
import { treeDigest } from '../core/tree-digest.js';
import { readArchive } from '../engine/container-archive.js';
import { digestDirectory } from '../sources/tree.js';
import { archiveDigest, archiveTreeEntries, diffTrees, pathMatcher } from './archive.js';
import { dirTreeEntries } from './local-tree.js';

type TarEntry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  mode?: number;
  body?: string;
  linkname?: string;
};

/** A tar shaped like the engine's `GET /containers/{id}/archive?path=/configs`. */
async function tarOf(entries: TarEntry[]): Promise<Readable> {
  const p = pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) =>
      p.entry(
        {
          name: e.name,
          type,
          mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
          ...(e.linkname ? { linkname: e.linkname } : {}),
        },
        type === 'file' ? (e.body ?? '') : '',
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  p.finalize();
  return Readable.from(p);
}

const configsTar: TarEntry[] = [
  { name: 'configs/', type: 'directory' },
  { name: 'configs/config.yaml', body: 'name: platform-agent\n' },
  { name: 'configs/hooks/', type: 'directory' },
  { name: 'configs/hooks/on-start.sh', body: '#!/bin/sh\n', mode: 0o755 },
  { name: 'configs/prompts/', type: 'directory' },
  { name: 'configs/prompts/system.md', body: 'You are the platform agent.\n' },
  { name: 'configs/prompts/default.md', type: 'symlink', linkname: 'system.md' },
];

function templateOnDisk(): string {
  const dir = makeTempDir('smoke-unit');
  mkdirSync(path.join(dir, 'hooks'));
  mkdirSync(path.join(dir, 'prompts'));
  writeFileSync(path.join(dir, 'config.yaml'), 'name: platform-agent\n');
  writeFileSync(path.join(dir, 'hooks/on-start.sh'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(dir, 'prompts/system.md'), 'You are the platform agent.\n');
  symlinkSync('system.md', path.join(dir, 'prompts/default.md'));
  return dir;
}

describe('readArchive', () => {
  it('strips the archived directory name and keeps types, modes and sizes', async () => {
    const entries = await readArchive(await tarOf(configsTar));
    expect(
      entries.map(({ path: p, type, mode, size, linkTarget }) => ({ p, type, mode, size, linkTarget })),
    ).toEqual([
      { p: 'config.yaml', type: 'file', mode: 0o644, size: 21, linkTarget: null },
      { p: 'hooks', type: 'directory', mode: 0o755, size: 0, linkTarget: null },
      { p: 'hooks/on-start.sh', type: 'file', mode: 0o755, size: 10, linkTarget: null },
      { p: 'prompts', type: 'directory', mode: 0o755, size: 0, linkTarget: null },
      { p: 'prompts/system.md', type: 'file', mode: 0o644, size: 28, linkTarget: null },
      { p: 'prompts/default.md', type: 'symlink', mode: 0o644, size: 0, linkTarget: 'system.md' },
    ]);
  });

  it("computes the same digest as staging's digestDirectory over the same tree", async () => {
    const dir = templateOnDisk();
    const entries = await readArchive(await tarOf(configsTar));
    const staged = await digestDirectory(dir);
    expect(archiveDigest(entries)).toBe(staged.digest);
    expect(treeDigest(await dirTreeEntries(dir))).toBe(staged.digest);
  });

  it('changes the digest for a stub config.yaml, a lost executable bit, or a moved tree', async () => {
    const base = archiveDigest(await readArchive(await tarOf(configsTar)));
    const stub = configsTar.map((e) =>
      e.name === 'configs/config.yaml' ? { ...e, body: 'name: agent\n' } : e,
    );
    const noExec = configsTar.map((e) =>
      e.name === 'configs/hooks/on-start.sh' ? { ...e, mode: 0o644 } : e,
    );
    const moved = configsTar.map((e) => ({
      ...e,
      name: e.name.replace('configs/', 'configs/platform-agent/'),
    }));
    for (const variant of [stub, noExec, moved]) {
      expect(archiveDigest(await readArchive(await tarOf(variant)))).not.toBe(base);
    }
  });

  it('treats a hard link as a copy of its target, as it is on disk', async () => {
    const entries = await readArchive(
      await tarOf([
        { name: 'configs/', type: 'directory' },
        { name: 'configs/a.md', body: 'same\n' },
        { name: 'configs/b.md', type: 'link', linkname: 'configs/a.md' },
      ]),
    );
    const [a, b] = archiveTreeEntries(entries);
    expect(b).toEqual({ ...a, path: 'b.md' });
  });

  it('leaves ignored files and directories out of the digest', async () => {
    const withExtra = [
      ...configsTar,
      { name: 'configs/.cache/', type: 'directory' as const },
      { name: 'configs/.cache/x', body: 'runtime state' },
      { name: 'configs/agent.pid', body: '1\n' },
    ];
    const entries = await readArchive(await tarOf(withExtra));
    expect(archiveDigest(entries, ['.cache', '*.pid'])).toBe(
      archiveDigest(await readArchive(await tarOf(configsTar))),
    );
  });
});

describe('pathMatcher', () => {
  it('matches basenames at any depth and relative paths, dotfiles included', () => {
    const m = pathMatcher(['.git', '.env*', '*.pem', 'secrets/**']);
    expect(
      [
        '.git',
        'sub/.git',
        '.env',
        'a/.env.local',
        'keys/server.pem',
        'secrets/x/y',
        'config.yaml',
        'env',
        'git',
      ].map(m),
    ).toEqual([true, true, true, true, true, true, false, false, false]);
    expect(pathMatcher([])('anything')).toBe(false);
  });
});

describe('diffTrees', () => {
  it('lists files on one side only and files that differ', async () => {
    const dir = templateOnDisk();
    const template = await dirTreeEntries(dir);
    const container = archiveTreeEntries(
      await readArchive(
        await tarOf([
          { name: 'configs/', type: 'directory' },
          { name: 'configs/config.yaml', body: 'stub\n' },
          { name: 'configs/extra.txt', body: 'x' },
          { name: 'configs/prompts/system.md', body: 'You are the platform agent.\n' },
        ]),
      ),
    );
    expect(diffTrees(container, template)).toEqual({
      onlyInContainer: ['extra.txt'],
      onlyInTemplate: ['hooks/on-start.sh', 'prompts/default.md'],
      changed: ['config.yaml'],
    });
  });
});
