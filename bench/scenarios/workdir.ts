// A clone of this repository whose manifest publishes under slipway-bench/<run>/: what the build,
// release and smoke groups run `slipway` and the docker CLI in.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { plainRunner, type Runner } from '../harness.js';
import { type BenchConfig, benchRepository, slipway } from './config.js';

/** The working directory and the commands both sides run in it. */
export interface Workdir {
  readonly dir: string;
  /** Registry prefix of every image, `host:port/slipway-bench/<run>/<group>`. */
  readonly prefix: string;
  /** Full registry name of a manifest image. */
  image(name: string): string;
  /** Peer tag of a manifest image. */
  peerImage(name: string): string;
  /** Runs `node bin/slipway.js --manifest <dir>/manifest.json ARGS`; its stdout. */
  slipway(runner: Runner, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string>;
  /** The docker CLI's two builds (platform, then platform-agent FROM it), tagged as the peer's images. */
  dockerBuilds(runner: Runner, noCache: boolean): Promise<void>;
  dispose(): Promise<void>;
}

/** Clones the repository at HEAD into a temp dir and points its manifest at slipway-bench/<run>/<group>/. */
export async function workdir(config: BenchConfig, group: string): Promise<Workdir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `slipway-bench-${group}-`));
  await plainRunner.run('git', ['clone', '--quiet', config.repo, dir]);
  await plainRunner.run('git', ['-C', dir, 'checkout', '--quiet', config.sha]);
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as {
    images: Record<string, { repository: string }>;
    publish?: { registry?: string };
  };
  const repoOf = (name: string) => benchRepository(config, `${group}/${name}`);
  for (const [name, image] of Object.entries(manifest.images)) image.repository = repoOf(name);
  manifest.publish = { ...manifest.publish, registry: `oci://${config.registryAddr}` };
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
  const prefix = `${config.registryAddr}/${benchRepository(config, group)}`;
  const image = (name: string) => `${config.registryAddr}/${repoOf(name)}`;
  const peerImage = (name: string) => `${prefix}/peer-${name}:bench`;
  return {
    dir,
    prefix,
    image,
    peerImage,
    async slipway(runner, args, env) {
      const c = slipway(config, ['--manifest', file, ...args]);
      const r = await runner.run(c.cmd, c.args, { cwd: dir, env: env ?? config.env });
      return r.stdout;
    },
    async dockerBuilds(runner, noCache) {
      const common = ['build', '--pull=false', '--quiet', ...(noCache ? ['--no-cache'] : [])];
      await runner.run(
        'docker',
        [
          ...common,
          '-f',
          'dockerfiles/Dockerfile.platform',
          '--build-arg',
          `ROOT_IMAGE=${config.rootImage}`,
          '-t',
          peerImage('platform'),
          '.',
        ],
        { cwd: dir },
      );
      await runner.run(
        'docker',
        [
          ...common,
          '-f',
          'dockerfiles/Dockerfile.platform-agent',
          '--build-arg',
          `BASE_IMAGE=${peerImage('platform')}`,
          '-t',
          peerImage('platform-agent'),
          '.',
        ],
        { cwd: dir },
      );
    },
    async dispose() {
      // Every local image this group made carries its prefix, tagged or left dangling by a
      // rebuild (`<none>` tag): removed by ID, dependents first (docker lists the newest first).
      // A base whose dependent was still there is left by one pass: a few passes.
      for (let pass = 0; pass < 3; pass += 1) {
        const { stdout } = await plainRunner.run('docker', ['images', '--format', '{{.Repository}} {{.ID}}']);
        const mine = new Set(
          stdout
            .split('\n')
            .filter((l) => l.startsWith(`${config.registryAddr}/slipway-bench/${config.runId}/${group}/`))
            .map((l) => l.split(' ')[1] ?? '')
            .filter(Boolean),
        );
        if (mine.size === 0) break;
        for (const id of mine)
          await plainRunner.run('docker', ['image', 'rm', '--force', id], { allowFail: true });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
