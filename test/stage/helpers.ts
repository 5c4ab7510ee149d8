/** Real git repositories and manifests for the staging integration tests. */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { LoadedManifest } from '../../src/manifest/load.js';
import { loadManifest } from '../../src/manifest/load.js';
import { makeTempDir } from '../support/temp.js';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Slipway Test',
  GIT_AUTHOR_EMAIL: 'test@slipway.invalid',
  GIT_COMMITTER_NAME: 'Slipway Test',
  GIT_COMMITTER_EMAIL: 'test@slipway.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
};

/** Runs git and returns trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** A unique temp dir; remember to remove it. */
export function tempDir(tag: string): string {
  return makeTempDir(tag);
}

/** Writes files (content string; `mode` 0o755 for executables) under `root`. */
export function writeTree(
  root: string,
  files: Record<string, string | { content: string; mode?: number; link?: string }>,
): void {
  for (const [rel, spec] of Object.entries(files)) {
    const abs = path.join(root, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    rmSync(abs, { force: true });
    if (typeof spec === 'string') writeFileSync(abs, spec);
    else if (spec.link !== undefined) symlinkSync(spec.link, abs);
    else {
      writeFileSync(abs, spec.content);
      if (spec.mode !== undefined) chmodSync(abs, spec.mode);
    }
  }
}

/** A template repository with two commits: `first` is the identity v1, `second` changes and adds files. */
export interface TemplateRepo {
  readonly work: string;
  readonly first: string;
  readonly second: string;
}

/** Creates a non-bare repository at `work` holding an agent template (optionally under `subdir`). */
export function makeTemplateRepo(work: string, subdir = ''): TemplateRepo {
  mkdirSync(work, { recursive: true });
  git(work, 'init', '--quiet', '--initial-branch=main');
  const at = (p: string) => (subdir ? `${subdir}/${p}` : p);
  writeTree(work, {
    [at('config.yaml')]: 'name: platform-agent\nmodel: large\n',
    [at('prompts/system.md')]: '# You are the platform agent\n',
    [at('mcp_servers/molecule.json')]: '{"command":"/opt/molecule-mcp-server"}\n',
    [at('identity-fallback.sh')]: { content: '#!/bin/sh\ncp -r /opt/identity/. /configs/\n', mode: 0o755 },
    [at('prompts/current.md')]: { content: '', link: 'system.md' },
    'README.md': 'outside the template when subdir is set\n',
  });
  git(work, 'add', '-A');
  git(work, 'commit', '--quiet', '-m', 'identity v1');
  const first = git(work, 'rev-parse', 'HEAD');
  writeTree(work, {
    [at('config.yaml')]: 'name: platform-agent\nmodel: larger\n',
    [at('prompts/added-later.md')]: 'second commit only\n',
  });
  git(work, 'add', '-A');
  git(work, 'commit', '--quiet', '-m', 'identity v2');
  const second = git(work, 'rev-parse', 'HEAD');
  return { work, first, second };
}

/** A bare clone of `work` at `dest`. */
export function bareClone(work: string, dest: string): string {
  execFileSync('git', ['clone', '--quiet', '--bare', work, dest], { env: GIT_ENV });
  return dest;
}

/** Writes manifest.json into `dir` with these templates (and one image consuming none) and loads it. */
export async function writeManifest(
  dir: string,
  templates: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<LoadedManifest> {
  mkdirSync(dir, { recursive: true });
  const manifest = {
    version: 1,
    templates,
    images: { platform: { dockerfile: 'Dockerfile', repository: 'molecule-ai/platform' } },
    ...extra,
  };
  writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return loadManifest(path.join(dir, 'manifest.json'));
}

/** One file of a tree: git mode and bytes (link target for symlinks). */
export type TreeMap = Record<string, { mode: string; content: string }>;

/** The tree of `sha` (under `subdir`) as git stores it. */
export function treeOfCommit(repo: string, sha: string, subdir = ''): TreeMap {
  const out: TreeMap = {};
  const listing = git(repo, 'ls-tree', '-r', '-z', subdir ? `${sha}:${subdir}` : sha);
  for (const line of listing.split('\0').filter(Boolean)) {
    const [meta = '', p = ''] = line.split('\t');
    const [mode = '', , object = ''] = meta.split(' ');
    out[p] = {
      mode,
      content: execFileSync('git', ['-C', repo, 'cat-file', 'blob', object]).toString('base64'),
    };
  }
  return out;
}

/** The tree on disk in the same form (no .git expected; it would show up). */
export function treeOnDisk(root: string): TreeMap {
  const out: TreeMap = {};
  const visit = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = lstatSync(abs);
      if (st.isDirectory()) visit(abs, rel);
      else if (st.isSymbolicLink())
        out[rel] = { mode: '120000', content: Buffer.from(readlinkSync(abs)).toString('base64') };
      else
        out[rel] = {
          mode: (st.mode & 0o100) !== 0 ? '100755' : '100644',
          content: readFileSync(abs).toString('base64'),
        };
    }
  };
  visit(root, '');
  return out;
}

/** Every byte under `root`, concatenated (to search for a leaked secret). */
export function allBytes(root: string): string {
  let out = '';
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const abs = path.join(dir, name);
      const st = lstatSync(abs);
      out += `${name}\n`;
      if (st.isDirectory()) visit(abs);
      else if (st.isSymbolicLink()) out += readlinkSync(abs);
      else out += readFileSync(abs, 'latin1');
    }
  };
  visit(root);
  return out;
}
