// The no-change rebuild of the repository's two images (platform, then platform-agent FROM it):
// `slipway build` finding both up to date against `docker build` of both with a warm layer cache.
import path from 'node:path';
import { type Group, plainRunner, type Variant } from '../harness.js';
import type { BenchConfig } from './config.js';
import { type Workdir, workdir } from './workdir.js';

/** The no-op rebuild group. */
export function buildGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  let wd: Workdir | undefined;
  const ready = () => {
    if (!wd) throw new Error('build: setup did not run');
    return wd;
  };
  const check: Variant = {
    key: 'build-slipway',
    side: 'slipway',
    label: 'slipway build (up to date)',
    does: '`slipway build --env bench`: preflight both Dockerfiles, plan (context walk and digest), find both images up to date by their input digest; no build request reaches the engine',
    async run(_rep, runner) {
      const out = await ready().slipway(runner, [
        '--json',
        'build',
        '--env',
        'bench',
        '--build-arg',
        `ROOT_IMAGE=${config.rootImage}`,
      ]);
      if (!/"reused":\s*true/.test(out) || /"reused":\s*false/.test(out))
        throw new Error(`build: slipway rebuilt an image:\n${out.slice(0, 400)}`);
    },
  };
  const dockerBuild: Variant = {
    key: 'build-docker',
    side: 'peer',
    label: 'docker build x2 (warm cache)',
    does: '`docker build` of Dockerfile.platform, then Dockerfile.platform-agent FROM it, same context and build args, warm layer cache (every step answered from the cache; the context is still sent)',
    async run(_rep, runner) {
      await ready().dockerBuilds(runner, false);
    },
  };
  return {
    name: 'build',
    notes,
    variants: [check, dockerBuild],
    rows: [
      { id: '4', title: 'no-change rebuild of 2 chained images', slipway: check.key, peer: dockerBuild.key },
    ],
    async setup() {
      wd = await workdir(config, 'build');
      await wd.slipway(plainRunner, ['stage']);
      await wd.slipway(plainRunner, [
        'build',
        '--env',
        'bench',
        '--build-arg',
        `ROOT_IMAGE=${config.rootImage}`,
      ]);
      await wd.dockerBuilds(plainRunner, false);
      notes.push(`build: the repository's manifest in ${path.basename(wd.dir)}, images under ${wd.prefix}`);
    },
    async teardown() {
      await wd?.dispose();
    },
  };
}
