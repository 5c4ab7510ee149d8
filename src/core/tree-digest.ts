import { createHash, hash } from 'node:crypto';
import { sortedByBytes } from './byte-order.js';

/**
 * The content digest of a file tree, shared by staging (computed from the staged directory) and
 * smoke (computed from a tar of a directory in the running container), so the two can be
 * compared: a stub `config.yaml` or the wrong template changes it.
 *
 * Definition (version 1): for every regular file and symlink, sorted by relative POSIX path
 * (byte order), hash the line `<path>\0<mode>\0<sha256 of content or link target>\n`, where mode
 * is git's normalisation (`100755` executable, `100644` other files, `120000` symlinks).
 * Directories are implied by their files; ownership and timestamps are ignored.
 */
export interface TreeEntry {
  /** POSIX path relative to the tree root, no leading `./` or `/`. */
  readonly path: string;
  readonly type: 'file' | 'symlink';
  /** Permission bits (e.g. 0o644); only the owner-executable bit matters. */
  readonly mode: number;
  /** sha256 hex of the content (files) or of the link target (symlinks). */
  readonly sha256: string;
}

/** The normalised git-style mode of an entry. */
export function normalisedMode(entry: Pick<TreeEntry, 'type' | 'mode'>): string {
  if (entry.type === 'symlink') return '120000';
  return (entry.mode & 0o100) !== 0 ? '100755' : '100644';
}

/** sha256 hex of a buffer or string. */
export function sha256Hex(data: Buffer | string): string {
  // One-shot: no Hash object per call (staging hashes every file of every template).
  return hash('sha256', data, 'hex');
}

/** `sha256:<hex>` digest of a tree (see the definition above). */
export function treeDigest(entries: Iterable<TreeEntry>): string {
  const sorted = sortedByBytes(entries, (e) => e.path);
  const h = createHash('sha256');
  let prev: string | undefined;
  // Lines are hashed in batches: one update per line costs more than the hashing itself.
  let batch = '';
  for (const e of sorted) {
    if (e.path === prev) throw new Error(`tree digest: duplicate path ${e.path}`);
    prev = e.path;
    batch += `${e.path}\0${normalisedMode(e)}\0${e.sha256}\n`;
    if (batch.length >= 65_536) {
      h.update(batch);
      batch = '';
    }
  }
  h.update(batch);
  return `sha256:${h.digest('hex')}`;
}
