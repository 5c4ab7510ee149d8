import { beforeDeadline, DeadlineError } from '../core/timeouts.js';
import type { Registry } from './registry.js';

/**
 * The two calls a rollback makes (tag lookups and tag writes) on `registry`, sharing one deadline
 * `ms` from now: a rollback against a registry that stopped answering gives up on the tags left
 * (and says which) instead of waiting one operation deadline per tag.
 */
export function registryWithDeadline(registry: Registry, ms: number): Pick<Registry, 'resolve' | 'putTag'> {
  const until = Date.now() + ms;
  const bounded = <T>(work: () => Promise<T>): Promise<T> =>
    Date.now() >= until ? Promise.reject(new DeadlineError(ms)) : beforeDeadline(work(), until);
  return {
    resolve: (repository, tag) => bounded(() => registry.resolve(repository, tag)),
    putTag: (repository, digest, tag, options) =>
      bounded(() => registry.putTag(repository, digest, tag, options)),
  };
}
