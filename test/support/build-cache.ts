/**
 * Removing the BuildKit cache records a test created, and only those: the records whose step
 * description holds the test's nonce, and every record built on them. The engine is shared, so
 * nothing else is pruned.
 */
import type Docker from 'dockerode';

interface CacheRecord {
  ID: string;
  Parent?: string;
  Description?: string;
}

/** Prunes the build cache records of steps mentioning `nonce` (children first); returns how many went. */
export async function pruneBuildCache(docker: Docker, nonce: string): Promise<number> {
  let removed = 0;
  for (let round = 0; round < 5; round++) {
    const df = (await docker.df()) as { BuildCache?: CacheRecord[] | null };
    const records = df.BuildCache ?? [];
    const mine = new Set(records.filter((r) => r.Description?.includes(nonce)).map((r) => r.ID));
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of records) {
        if (r.Parent && mine.has(r.Parent) && !mine.has(r.ID)) {
          mine.add(r.ID);
          grew = true;
        }
      }
    }
    if (mine.size === 0) return removed;
    // A record is kept while a child refers to it: children (found last) go first.
    for (const id of [...mine].reverse()) {
      // dockerode's types omit the filters the engine's /build/prune takes.
      const options = { filters: JSON.stringify({ id: [id] }) } as Docker.PruneBuilderOptions;
      const res = (await docker.pruneBuilder(options)) as { CachesDeleted?: string[] | null };
      removed += res.CachesDeleted?.length ?? 0;
    }
  }
  return removed;
}
