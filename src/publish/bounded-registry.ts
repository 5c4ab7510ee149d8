import { beforeDeadline, DeadlineError } from '../core/timeouts.js';
import type { Registry } from './registry.js';

/**
 * A view of `registry` whose lookups and tag writes all share one deadline, `ms` from now: a
 * rollback against a registry that stopped answering gives up on the tags left (and says which)
 * instead of waiting one operation deadline per tag.
 */
export function registryWithDeadline(registry: Registry, ms: number): Registry {
  const until = Date.now() + ms;
  const bounded = <T>(work: () => Promise<T>): Promise<T> =>
    Date.now() >= until ? Promise.reject(new DeadlineError(ms)) : beforeDeadline(work(), until);
  return {
    url: registry.url,
    imageName: (repository) => registry.imageName(repository),
    repositoryOf: (ref) => registry.repositoryOf(ref),
    engineAuth: () => bounded(() => registry.engineAuth()),
    ensureRepository: (repository, options) => bounded(() => registry.ensureRepository(repository, options)),
    resolve: (repository, tag) => bounded(() => registry.resolve(repository, tag)),
    configDigest: (repository, digest) => bounded(() => registry.configDigest(repository, digest)),
    putTag: (repository, digest, tag, options) =>
      bounded(() => registry.putTag(repository, digest, tag, options)),
  };
}
