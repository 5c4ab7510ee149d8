// Deferred deletion of what the timed runs leave behind.
//
// On an ext4 file system without a journal (this machine's), the kernel's inode allocator skips
// every inode deleted in the last 60 to 300 seconds (`recently_deleted` in fs/ext4/ialloc.c),
// reading its inode-table block each time: right after a tree of 10,000 files is removed, every
// file created costs several times more, for minutes. Removing one variant's output before the
// next variant runs would bill that debt to whichever side happens to run next. So outputs are
// moved aside (one rename) and deleted once, after the last measurement.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Trees set aside during the run and deleted at its end. */
export class Trash {
  private root: string | undefined;
  private count = 0;

  /** Moves `dir` aside (or deletes it at once when it is on another file system); absent is fine. */
  async discard(dir: string): Promise<void> {
    this.root ??= await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-trash-'));
    this.count += 1;
    try {
      await rename(dir, path.join(this.root, String(this.count)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Deletes everything set aside. */
  async empty(): Promise<void> {
    if (this.root) await rm(this.root, { recursive: true, force: true });
    this.root = undefined;
  }
}
