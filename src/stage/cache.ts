import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  constants as fsConstants,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256Hex } from '../core/tree-digest.js';

/** The cache key of a fetched tree: a pinned commit's content never changes, so this is content-addressed. */
export interface CacheKey {
  /** Credential-free source identity (see TreeSource.identity). */
  readonly identity: string;
  readonly ref: string;
  /** '' for the whole tree. */
  readonly subdir: string;
}

/** A completed cache entry. */
export interface CacheHit {
  /** The cached tree (read-only by convention). */
  readonly tree: string;
  /** Digest of the whole tree when it was cached, to detect a damaged copy. */
  readonly sourceDigest: string;
}

/** The completion marker, written last inside an entry before it is renamed into place. */
const MARKER = 'entry.json';
const FORMAT = 1;

/** The default cache directory: `$XDG_CACHE_HOME/slipway/templates` or `~/.cache/slipway/templates`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'slipway', 'templates');
}

/** A cache of fetched template trees, one directory per key, each appearing atomically (temp + rename). */
export class TemplateCache {
  constructor(readonly root: string) {}

  /** The entry directory name for a key. */
  static keyHash(key: CacheKey): string {
    return sha256Hex(JSON.stringify({ v: FORMAT, identity: key.identity, ref: key.ref, subdir: key.subdir }));
  }

  /** The cached tree for `key`, or null when absent or incomplete. */
  async get(key: CacheKey): Promise<CacheHit | null> {
    const dir = path.join(this.root, TemplateCache.keyHash(key));
    try {
      const marker = JSON.parse(await readFile(path.join(dir, MARKER), 'utf8')) as {
        format?: number;
        sourceDigest?: string;
      };
      if (marker.format !== FORMAT || typeof marker.sourceDigest !== 'string') return null;
      return { tree: path.join(dir, 'tree'), sourceDigest: marker.sourceDigest };
    } catch {
      return null;
    }
  }

  /** A fresh scratch directory inside the cache (same filesystem, so committing is a rename). */
  async scratch(): Promise<string> {
    await mkdir(this.root, { recursive: true });
    return mkdtemp(path.join(this.root, '.tmp-'));
  }

  /**
   * Commits a scratch directory whose `tree/` holds the fetched tree: writes the marker, then
   * renames it into place. When another process committed the same key first, its copy stays.
   */
  async commit(scratch: string, key: CacheKey, sourceDigest: string): Promise<void> {
    const marker = { format: FORMAT, ...key, sourceDigest, cachedAt: new Date().toISOString() };
    await writeFile(path.join(scratch, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    const dir = path.join(this.root, TemplateCache.keyHash(key));
    try {
      await rename(scratch, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      await rm(scratch, { recursive: true, force: true });
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
  }

  /**
   * A hard-linked copy of `tree` (a staged tree, which stays where it is) at `target`, for a
   * scratch directory's `tree/`: the cache costs no second write of every file (files are copied
   * across file systems).
   */
  async linkCopy(tree: string, target: string): Promise<void> {
    if (!(await hardLinkCopy(tree, target))) {
      await rm(target, { recursive: true, force: true });
      linkTree(tree, target);
    }
  }

  /** Drops an entry (e.g. one whose content no longer matches its digest). */
  async remove(key: CacheKey): Promise<void> {
    await rm(path.join(this.root, TemplateCache.keyHash(key)), { recursive: true, force: true });
  }
}

let cpLinks = true;

/**
 * `cp -al src dest` (GNU coreutils): the same hard-linked copy as {@link linkTree}, made by another
 * process, so the thousands of link calls of a large template run beside this thread. False
 * where that cp is missing or fails (then it is not tried again in this process).
 */
function hardLinkCopy(src: string, dest: string): Promise<boolean> {
  if (!cpLinks) return Promise.resolve(false);
  return new Promise((resolve) => {
    const child = spawn('cp', ['-al', '--', src, dest], { stdio: 'ignore' });
    child.once('error', () => {
      cpLinks = false;
      resolve(false);
    });
    child.once('close', (code) => {
      if (code !== 0) cpLinks = false;
      resolve(code === 0);
    });
  });
}

/** Recreates the directories of `src` under `dest` and hard-links (or copies) its files and symlinks. */
function linkTree(src: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  // Entry types from the directory listing itself: no stat per file.
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    const from = path.join(src, entry.name);
    const to = path.join(dest, entry.name);
    if (entry.isDirectory()) {
      linkTree(from, to);
      continue;
    }
    try {
      linkSync(from, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
      if (entry.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
      else {
        copyFileSync(from, to, fsConstants.COPYFILE_EXCL);
        chmodSync(to, lstatSync(from).mode & 0o777);
      }
    }
  }
}
