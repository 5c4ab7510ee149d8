import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { TreeEntry } from '../core/tree-digest.js';

/**
 * The tree entries of a local directory exactly as staging hashes it (regular files and
 * symlinks, paths relative to `dir`, mode from lstat), so smoke can name the files that differ
 * between a staged template and what the container holds.
 */
export async function dirTreeEntries(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  async function walk(abs: string, rel: string): Promise<void> {
    for (const d of await readdir(abs, { withFileTypes: true })) {
      const childAbs = path.join(abs, d.name);
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      const st = await lstat(childAbs);
      if (st.isDirectory()) await walk(childAbs, childRel);
      else if (st.isSymbolicLink()) {
        const target = await readlink(childAbs);
        out.push({ path: childRel, type: 'symlink', mode: st.mode & 0o7777, sha256: sha256Of(target) });
      } else if (st.isFile()) {
        out.push({
          path: childRel,
          type: 'file',
          mode: st.mode & 0o7777,
          sha256: await fileSha256(childAbs),
        });
      }
    }
  }
  await walk(dir, '');
  return out;
}

function sha256Of(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function fileSha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}
