import type { PathStat } from '../engine/container-archive.js';
import type { ImageEngine } from '../engine/image-engine.js';

/**
 * Reading a running container the way the agent in it would, over the image engine port:
 * symlinks followed, logs trimmed to their tail.
 */

/** Stats a path, following symlinks (up to 8 hops) the way the agent opening it would. */
export async function statFollow(
  engine: ImageEngine,
  containerId: string,
  p: string,
): Promise<{ stat: PathStat | null; resolved: string }> {
  let cur = p;
  for (let hop = 0; hop < 8; hop++) {
    const st = await engine.statPath(containerId, cur);
    if (st?.type !== 'symlink') return { stat: st, resolved: cur };
    cur = st.linkTarget.startsWith('/')
      ? st.linkTarget
      : `${cur.slice(0, cur.lastIndexOf('/')) || ''}/${st.linkTarget}`;
  }
  return { stat: null, resolved: cur };
}

/** The last `n` non-empty lines of a text. */
export function tailLines(text: string, n: number): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.length > 0)
    .slice(-n);
}
