import path from 'node:path';
import picomatch from 'picomatch';
import { type TreeEntry, treeDigest } from '../core/tree-digest.js';
import type { ArchiveEntry } from '../engine/container-archive.js';

/**
 * Comparing what a running container holds (its directories as the engine's archive API returns
 * them, see engine/container-archive.ts) with what staging hashed: matchers, digests and diffs.
 */

/** A matcher for `absent` patterns and `ignore` globs: a pattern matches the basename or the relative path. */
export function pathMatcher(patterns: readonly string[]): (relPath: string) => boolean {
  if (patterns.length === 0) return () => false;
  const isMatch = picomatch([...patterns], { dot: true });
  return (rel) => isMatch(rel) || isMatch(path.posix.basename(rel));
}

/** The tree entries (files and symlinks) of an archive, minus ignored paths, as staging sees a directory. */
export function archiveTreeEntries(
  entries: readonly ArchiveEntry[],
  ignore: readonly string[] = [],
): TreeEntry[] {
  const ignored = pathMatcher(ignore);
  const out: TreeEntry[] = [];
  for (const e of entries) {
    if ((e.type !== 'file' && e.type !== 'symlink') || e.sha256 === null) continue;
    if (ignored(e.path) || isUnderIgnoredDir(e.path, ignored)) continue;
    out.push({ path: e.path, type: e.type, mode: e.mode, sha256: e.sha256 });
  }
  return out;
}

function isUnderIgnoredDir(rel: string, ignored: (p: string) => boolean): boolean {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    if (ignored(parts.slice(0, i).join('/'))) return true;
  }
  return false;
}

/** The content digest of an archived directory (see core/tree-digest.ts). */
export function archiveDigest(entries: readonly ArchiveEntry[], ignore: readonly string[] = []): string {
  return treeDigest(archiveTreeEntries(entries, ignore));
}

/** How two trees differ, by relative path. */
export interface TreeDiff {
  readonly onlyInContainer: string[];
  readonly onlyInTemplate: string[];
  readonly changed: string[];
}

/** Files present on one side only, and files whose content or mode differ. */
export function diffTrees(container: readonly TreeEntry[], template: readonly TreeEntry[]): TreeDiff {
  const key = (e: TreeEntry) => `${e.type}:${e.sha256}:${e.type === 'symlink' || (e.mode & 0o100) !== 0}`;
  const c = new Map(container.map((e) => [e.path, key(e)]));
  const t = new Map(template.map((e) => [e.path, key(e)]));
  const sort = (a: string[]) => a.sort();
  return {
    onlyInContainer: sort([...c.keys()].filter((p) => !t.has(p))),
    onlyInTemplate: sort([...t.keys()].filter((p) => !c.has(p))),
    changed: sort([...c.keys()].filter((p) => t.has(p) && t.get(p) !== c.get(p))),
  };
}
