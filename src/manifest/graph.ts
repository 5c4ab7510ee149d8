import { SlipwayError } from '../core/errors.js';
import type { Manifest } from './schema.js';

/** A cycle in the `base` graph, as the list of image names that form it (first repeated last). */
export function findBaseCycle(manifest: Pick<Manifest, 'images'>): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | null => {
    const s = state.get(name);
    if (s === 'done') return null;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    const base = manifest.images[name]?.base;
    const found = base !== undefined && manifest.images[base] ? visit(base) : null;
    stack.pop();
    state.set(name, 'done');
    return found;
  };
  for (const name of Object.keys(manifest.images).sort()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return null;
}

/** True when the `base` graph cannot be built: an image is its own base, names a missing base, or bases form a cycle. */
export function baseGraphBroken(manifest: Pick<Manifest, 'images'>): boolean {
  const badBase = Object.entries(manifest.images).some(
    ([name, image]) =>
      image.base !== undefined && (image.base === name || !Object.hasOwn(manifest.images, image.base)),
  );
  return badBase || findBaseCycle(manifest) !== null;
}

/**
 * Image names in build order (every base before the images built on it), limited to `requested`
 * and their bases when given. Deterministic: ties break by name.
 */
export function imageOrder(manifest: Pick<Manifest, 'images'>, requested?: readonly string[]): string[] {
  const cycle = findBaseCycle(manifest);
  if (cycle) {
    throw new SlipwayError('CONTRACT_VIOLATION', `images form a base cycle: ${cycle.join(' -> ')}`, {
      resource: 'images',
      hint: 'an image cannot be built FROM itself, directly or through other images',
    });
  }
  const wanted = new Set<string>();
  const add = (name: string) => {
    if (wanted.has(name)) return;
    const image = manifest.images[name];
    if (!image) {
      throw new SlipwayError('USAGE', `no image named "${name}" in the manifest`, {
        resource: name,
        hint: `known images: ${Object.keys(manifest.images).sort().join(', ') || '(none)'}`,
      });
    }
    wanted.add(name);
    if (image.base !== undefined) add(image.base);
  };
  for (const name of requested && requested.length > 0 ? requested : Object.keys(manifest.images)) add(name);

  const depth = (name: string): number => {
    const base = manifest.images[name]?.base;
    return base === undefined ? 0 : 1 + depth(base);
  };
  return [...wanted].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0));
}
