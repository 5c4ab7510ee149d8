// Retag (what promotion and moving tags do): point a new tag at an image already in the registry.
// Slipway's `tag` copies the manifest; the peers are `skopeo copy` and docker pull + tag + push.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Group, plainRunner, type Variant } from '../harness.js';
import { randomTarball } from '../workloads.js';
import { type BenchConfig, benchRepository, slipway } from './config.js';

/** The retag group for an image of `mb` MB (one random, incompressible layer from `docker import`). */
export function retagGroup(config: BenchConfig, mb: number): Group {
  const repository = benchRepository(config, `retag-${mb}`);
  const name = `${config.registryAddr}/${repository}`;
  const src = `${name}:src`;
  const notes: string[] = [];
  const localTags = new Set<string>([src]);
  let digest = '';
  const docker = (args: string[], allowFail = false) => plainRunner.run('docker', args, { allowFail });
  const resolve = async (tag: string): Promise<string> => {
    const res = await fetch(`http://${config.registryAddr}/v2/${repository}/manifests/${tag}`, {
      method: 'HEAD',
      headers: {
        accept:
          'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
      },
    });
    return res.headers.get('docker-content-digest') ?? '';
  };
  const verify = (tag: string) => async (rep: number) => {
    if (rep > 1) return;
    const got = await resolve(`${tag}-${rep}`);
    if (got !== digest)
      throw new Error(`retag: ${tag}-${rep} resolves to ${got || 'nothing'}, not ${digest}`);
  };

  const tag: Variant = {
    key: `retag${mb}-slipway`,
    side: 'slipway',
    label: 'slipway tag',
    does: '`slipway tag SRC DST --registry oci://…`: resolve SRC, GET its manifest, PUT it under DST, verify; no layer moves',
    async run(rep, runner) {
      const c = slipway(config, [
        'tag',
        src,
        `${name}:slipway-${rep}`,
        '--registry',
        `oci://${config.registryAddr}`,
      ]);
      await runner.run(c.cmd, c.args, { cwd: config.repo, env: config.env });
    },
    after: verify('slipway'),
  };
  const skopeo: Variant = {
    key: `retag${mb}-skopeo`,
    side: 'peer',
    label: 'skopeo copy',
    does: '`skopeo copy docker://SRC docker://DST` in the same registry (plain http): reads the manifest, checks every blob is there (none is copied), writes the manifest',
    async run(rep, runner) {
      await runner.run('skopeo', [
        '--insecure-policy',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${src}`,
        `docker://${name}:skopeo-${rep}`,
      ]);
    },
    after: verify('skopeo'),
  };
  const pullPush: Variant = {
    key: `retag${mb}-docker`,
    side: 'peer',
    label: 'docker pull+tag+push',
    does: '`docker pull SRC && docker tag SRC DST && docker push DST` with SRC not in the engine (removed before every repetition, untimed): the layer is downloaded and extracted, the push finds every blob in the registry',
    async before() {
      await docker(['image', 'rm', src], true);
    },
    async run(rep, runner) {
      const dst = `${name}:docker-${rep}`;
      localTags.add(dst);
      await runner.run('docker', ['pull', '--quiet', src]);
      await runner.run('docker', ['tag', src, dst]);
      await runner.run('docker', ['push', '--quiet', dst]);
    },
    async after(rep) {
      await verify('docker')(rep).catch((err: unknown) => notes.push(`retag ${mb} MB: ${String(err)}`));
      await docker(['image', 'rm', `${name}:docker-${rep}`, src], true);
    },
  };

  // The floor of any Node.js command, measured beside skopeo: what a retag by a Node CLI cannot go below.
  const nodeStart: Variant = {
    key: `retag${mb}-node`,
    side: 'slipway',
    label: 'Node.js start-up alone (`node -e 0`)',
    does: '`node -e 0` with the Node.js that runs Slipway: no module loaded, no request made; the lower bound of every `slipway` command',
    async run(_rep, runner) {
      await runner.run(process.execPath, ['-e', '0']);
    },
  };

  return {
    name: `retag-${mb}`,
    notes,
    // Its rows compare medians of 40-300 ms, within 20% of each other: more samples steady them.
    repsFactor: 3,
    variants: mb === 50 ? [tag, skopeo, pullPush, nodeStart] : [tag, skopeo, pullPush],
    rows: [
      {
        id: mb === 50 ? '5a' : '6a',
        title: `retag a ${mb} MB image vs skopeo copy`,
        slipway: tag.key,
        peer: skopeo.key,
      },
      {
        id: mb === 50 ? '5b' : '6b',
        title: `retag a ${mb} MB image vs docker pull+tag+push`,
        slipway: tag.key,
        peer: pullPush.key,
      },
      ...(mb === 50
        ? [
            {
              id: '5d',
              title: 'floor: Node.js start-up alone vs skopeo copy (a 50 MB image)',
              slipway: nodeStart.key,
              peer: skopeo.key,
            },
          ]
        : []),
    ],
    async setup() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-retag-'));
      try {
        const tarball = path.join(dir, 'layer.tar');
        await randomTarball(tarball, 'payload.bin', mb * 1000 * 1000, `retag/${mb}`);
        await docker(['import', tarball, src]);
        await docker(['push', '--quiet', src]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      digest = await resolve('src');
      if (!digest) throw new Error(`retag: ${src} was pushed but does not resolve`);
      notes.push(
        `retag ${mb} MB: ${src} = ${digest}; 3 times BENCH_REPS timed repetitions (its rows compare medians of a few hundred ms)`,
      );
      await docker(['image', 'rm', src], true);
    },
    async teardown() {
      for (const t of localTags) await docker(['image', 'rm', t], true);
    },
  };
}
