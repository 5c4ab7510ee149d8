// Cross-registry copy (what a promotion into a production registry does): an image in the services
// registry copied by digest into a second registry. Slipway's `pins promote --to-registry` against
// `skopeo copy` between the two. The second registry is a docker-registry of the bench's own, on a
// free loopback port with its config and storage in a temp dir, stopped by its PID at the end.
//
// Both sides do the same work every repetition: the source image is mounted (untimed) into a fresh
// repository of the services registry, and copied into the same, empty, repository name of the
// second registry; afterwards (untimed) that repository's manifest and blob links are deleted, so
// no later copy can mount a blob from it (skopeo remembers where it pushed blobs and would).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OwnRegistry } from '../../test/support/own-registry.js';
import { type Group, plainRunner, type Variant } from '../harness.js';
import { randomTarball } from '../workloads.js';
import { type BenchConfig, benchRepository, slipway } from './config.js';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

/** An image manifest as the registry serves it. */
interface Served {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
  readonly blobs: readonly string[];
}

async function getManifest(addr: string, repository: string, ref: string): Promise<Served | null> {
  const res = await fetch(`http://${addr}/v2/${repository}/manifests/${ref}`, {
    headers: { accept: MANIFEST_TYPES },
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    return null;
  }
  const body = Buffer.from(await res.arrayBuffer());
  const doc = JSON.parse(body.toString('utf8')) as {
    mediaType?: string;
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  return {
    digest: res.headers.get('docker-content-digest') ?? '',
    mediaType: res.headers.get('content-type') ?? doc.mediaType ?? '',
    body,
    blobs: [doc.config.digest, ...doc.layers.map((l) => l.digest)],
  };
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
}

/** The cross-registry group for an image of `mb` MB (one random, incompressible layer). */
export function crossRegistryGroup(config: BenchConfig, mb: number, maxReps?: number): Group {
  const group = `cross-registry-${mb}`;
  const base = benchRepository(config, `xreg-${mb}`);
  const seedRepo = `${base}/seed`;
  const seedTag = `${config.registryAddr}/${seedRepo}:src`;
  const notes: string[] = [];
  let target: OwnRegistry | undefined;
  let dir = '';
  let seed: Served | undefined;
  const ready = () => {
    if (!target || !seed) throw new Error(`${group}: setup did not run`);
    return { target, seed };
  };
  const repoOf = (side: string, rep: number) => `${base}/${side}-${rep}`;

  /** Untimed: the seed image under a fresh repository of the services registry, by blob mounts. */
  const mountSource = async (repository: string): Promise<void> => {
    const { seed: s } = ready();
    for (const blob of s.blobs) {
      const res = await fetch(
        `http://${config.registryAddr}/v2/${repository}/blobs/uploads/?mount=${blob}&from=${seedRepo}`,
        { method: 'POST', signal: AbortSignal.timeout(30_000) },
      );
      await expectStatus(res, 201, `mount ${blob} into ${repository}`);
    }
    const res = await fetch(`http://${config.registryAddr}/v2/${repository}/manifests/${s.digest}`, {
      method: 'PUT',
      headers: { 'content-type': s.mediaType },
      body: s.body,
      signal: AbortSignal.timeout(30_000),
    });
    await expectStatus(res, 201, `put ${repository}@${s.digest}`);
  };

  /** Untimed: the copy is there under its digest; then its manifest and blob links go. */
  const checkAndForget = async (repository: string, ref: string): Promise<void> => {
    const { target: t, seed: s } = ready();
    const got = await getManifest(t.addr, repository, ref);
    if (got?.digest !== s.digest)
      throw new Error(
        `${group}: ${t.addr}/${repository}:${ref} is ${got?.digest || 'missing'}, not ${s.digest}`,
      );
    const del = (kind: 'manifests' | 'blobs', digest: string) =>
      fetch(`http://${t.addr}/v2/${repository}/${kind}/${digest}`, {
        method: 'DELETE',
        signal: AbortSignal.timeout(30_000),
      }).then((res) => expectStatus(res, 202, `delete ${repository} ${kind} ${digest}`));
    await del('manifests', s.digest);
    for (const blob of s.blobs) await del('blobs', blob);
  };

  const promote: Variant = {
    key: `xreg${mb}-slipway`,
    side: 'slipway',
    label: 'slipway pins promote --to-registry',
    does: '`slipway pins --store file:… promote RUNTIME SRC@DIGEST --registry oci://A --to-registry oci://B --force --reason bench --by bench` on a one-image manifest whose pin names the image: load and check the manifest, HEAD then stream every blob from A to B (nothing in B to mount), PUT the manifest by digest, read it back, copy attestations (none), then the forced, audited pin write to a file store; the pin gate and the store write are extra work skopeo does not do',
    async before(rep) {
      const repository = repoOf('slipway', rep);
      await mountSource(repository);
      const manifest = {
        version: 1,
        images: {
          copied: { dockerfile: 'Dockerfile', context: '.', repository },
        },
        tags: { immutable: ['{env}-{sha}'], moving: [], sha: 'full' },
        pins: { bench: { image: 'copied' } },
        publish: { registry: `oci://${config.registryAddr}` },
      };
      await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await rm(path.join(dir, 'pins.json'), { force: true });
    },
    async run(rep, runner) {
      const { target: t, seed: s } = ready();
      const c = slipway(config, [
        '--manifest',
        path.join(dir, 'manifest.json'),
        '--json',
        'pins',
        '--store',
        `file:${path.join(dir, 'pins.json')}`,
        'promote',
        'bench',
        `${config.registryAddr}/${repoOf('slipway', rep)}@${s.digest}`,
        '--registry',
        `oci://${config.registryAddr}`,
        '--to-registry',
        `oci://${t.addr}`,
        '--force',
        '--reason',
        'bench',
        '--by',
        'bench',
      ]);
      const r = await runner.run(c.cmd, c.args, { cwd: dir, env: config.env });
      const out = JSON.parse(r.stdout) as { copied?: { blobs?: { copied: number } } };
      if (out.copied?.blobs?.copied !== s.blobs.length)
        throw new Error(`${group}: slipway copied ${JSON.stringify(out.copied?.blobs)}, not every blob`);
    },
    after: (rep) => checkAndForget(repoOf('slipway', rep), ready().seed.digest),
  };
  const skopeo: Variant = {
    key: `xreg${mb}-skopeo`,
    side: 'peer',
    label: 'skopeo copy (registry to registry)',
    does: '`skopeo copy --src-tls-verify=false --dest-tls-verify=false docker://A/REPO@DIGEST docker://B/REPO:bench` (plain http): reads the manifest, HEADs then streams every blob from A to B (nothing in B to mount), writes the manifest under the tag; no checks of its own beyond digests',
    async before(rep) {
      await mountSource(repoOf('skopeo', rep));
    },
    async run(rep, runner) {
      const { target: t, seed: s } = ready();
      await runner.run('skopeo', [
        '--insecure-policy',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${config.registryAddr}/${repoOf('skopeo', rep)}@${s.digest}`,
        `docker://${t.addr}/${repoOf('skopeo', rep)}:bench`,
      ]);
    },
    after: (rep) => checkAndForget(repoOf('skopeo', rep), 'bench'),
  };

  return {
    name: group,
    notes,
    variants: [promote, skopeo],
    rows: [
      {
        id: mb === 50 ? '5c' : '6c',
        title: `copy a ${mb} MB image to a second registry vs skopeo copy`,
        slipway: promote.key,
        peer: skopeo.key,
      },
    ],
    ...(maxReps === undefined ? {} : { maxReps }),
    async setup() {
      dir = await mkdtemp(path.join(os.tmpdir(), `slipway-bench-xreg-${mb}-`));
      await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
      // The retag group of this run pushed the same image already: mount it instead of pushing again.
      const retagRepo = benchRepository(config, `retag-${mb}`);
      const retag = await getManifest(config.registryAddr, retagRepo, 'src');
      if (retag) {
        for (const blob of retag.blobs) {
          const res = await fetch(
            `http://${config.registryAddr}/v2/${seedRepo}/blobs/uploads/?mount=${blob}&from=${retagRepo}`,
            { method: 'POST', signal: AbortSignal.timeout(30_000) },
          );
          await expectStatus(res, 201, `mount ${blob} into ${seedRepo}`);
        }
        const res = await fetch(`http://${config.registryAddr}/v2/${seedRepo}/manifests/src`, {
          method: 'PUT',
          headers: { 'content-type': retag.mediaType },
          body: retag.body,
          signal: AbortSignal.timeout(30_000),
        });
        await expectStatus(res, 201, `put ${seedRepo}:src`);
      } else {
        const tarball = path.join(dir, 'layer.tar');
        await randomTarball(tarball, 'payload.bin', mb * 1000 * 1000, `retag/${mb}`);
        await plainRunner.run('docker', ['import', tarball, seedTag]);
        await plainRunner.run('docker', ['push', '--quiet', seedTag]);
        await plainRunner.run('docker', ['image', 'rm', seedTag], { allowFail: true });
        await rm(tarball, { force: true });
      }
      seed = (await getManifest(config.registryAddr, seedRepo, 'src')) ?? undefined;
      if (!seed?.digest) throw new Error(`${group}: ${seedTag} was pushed but does not resolve`);
      target = await OwnRegistry.start();
      notes.push(
        `cross-registry ${mb} MB: ${seedTag} = ${seed.digest} (${seed.blobs.length} blobs), copied to a docker-registry the bench started on ${target.addr}`,
      );
    },
    async teardown() {
      await target?.stop();
      target = undefined;
      await plainRunner.run('docker', ['image', 'rm', seedTag], { allowFail: true });
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
