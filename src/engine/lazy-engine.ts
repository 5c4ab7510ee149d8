import type { ImageEngine } from './image-engine.js';

/**
 * An {@link ImageEngine} that loads its implementation on the first call: commands that never
 * touch the engine (tag, stage, verify) do not pay for loading dockerode. A failed load is
 * retried on the next call.
 */
export function lazyEngine(load: () => Promise<ImageEngine>): ImageEngine {
  let loading: Promise<ImageEngine> | undefined;
  const engine = (): Promise<ImageEngine> => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
  return {
    ping: async () => (await engine()).ping(),
    inspectImage: async (ref) => (await engine()).inspectImage(ref),
    build: async (request, onLine, signal) => (await engine()).build(request, onLine, signal),
    tag: async (image, target) => (await engine()).tag(image, target),
    removeTag: async (ref) => (await engine()).removeTag(ref),
    push: async (target, auth, onLine, onProgress) => (await engine()).push(target, auth, onLine, onProgress),
    pull: async (ref, auth, options) => (await engine()).pull(ref, auth, options),
    createVolume: async (name, labels) => (await engine()).createVolume(name, labels),
    removeVolume: async (name) => (await engine()).removeVolume(name),
    createContainer: async (spec) => (await engine()).createContainer(spec),
    startContainer: async (id) => (await engine()).startContainer(id),
    inspectContainer: async (id) => (await engine()).inspectContainer(id),
    logs: async (id) => (await engine()).logs(id),
    exec: async (id, argv, options) => (await engine()).exec(id, argv, options),
    statPath: async (id, p) => (await engine()).statPath(id, p),
    archive: async (id, p) => (await engine()).archive(id, p),
    removeContainer: async (id, options) => (await engine()).removeContainer(id, options),
  };
}
