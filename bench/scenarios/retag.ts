// Scenario 1: move a tag to an image already in the registry (promote / moving-tag copy).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { copyImage, ImageRef, openRegistry, type Registry } from '../../src/index.js';
import { type Group, plainRunner, type Variant } from '../harness.js';
import type { BenchConfig } from './config.js';

/** Size of the random (incompressible) layer on top of the root image. */
const PAYLOAD_BYTES = 4 * 1024 * 1024;

export function retagGroup(config: BenchConfig): Group {
  const repository = `bench/retag-${config.runId}`;
  const name = `${config.registryAddr}/${repository}`;
  const srcRef = `${name}:src`;
  const notes: string[] = [];
  let registry: Registry | undefined;
  let digest = '';
  const peerTags: string[] = [];

  const reg = (): Registry => {
    if (!registry) throw new Error('retag: setup did not run');
    return registry;
  };
  const docker = (args: string[], allowFail = false) => plainRunner.run('docker', args, { allowFail });
  const removeLocal = async (refs: string[]) => {
    for (const ref of refs) await docker(['image', 'rm', ref], true);
  };

  const putTag: Variant = {
    key: 'slipway-puttag',
    side: 'slipway',
    label: 'Registry.putTag',
    does: 'GET the manifest by digest, PUT it under the new tag (2 HTTP requests; no layer moves)',
    async run(rep) {
      await reg().putTag(repository, digest, `slipway-${rep}`);
    },
    async after(rep) {
      if (rep === 0) {
        const served = await reg().resolve(repository, 'slipway-0');
        if (served !== digest) throw new Error(`putTag: slipway-0 resolves to ${served}, not ${digest}`);
      }
    },
  };

  const copy: Variant = {
    key: 'slipway-copy',
    side: 'slipway',
    label: 'copyImage',
    does: 'resolve the source tag, check the target, GET+PUT the manifest, resolve the target again to verify (5 HTTP requests; no layer moves)',
    async run(rep) {
      const result = await copyImage(ImageRef.parse(srcRef), ImageRef.parse(`${name}:copy-${rep}`), reg());
      if (result.digest !== digest || !result.changed) throw new Error('copyImage: unexpected result');
    },
  };

  const peer: Variant = {
    key: 'peer-pull-tag-push',
    side: 'peer',
    label: 'docker pull+tag+push',
    does: `docker pull of the source tag (the ~${PAYLOAD_BYTES / 1024 / 1024} MiB random layer is downloaded and extracted; the root image's layer is already local), docker tag, docker push of the new tag (the registry already has every blob, so the push checks them and uploads only the manifest)`,
    async before() {
      // The pull must be real: nothing of the image but the shared root layer may be local.
      await removeLocal([srcRef]);
    },
    async run(rep, runner) {
      const target = `${name}:peer-${rep}`;
      peerTags.push(target);
      await runner.run('docker', ['pull', srcRef]);
      await runner.run('docker', ['tag', srcRef, target]);
      await runner.run('docker', ['push', target]);
    },
    async after(rep) {
      if (rep === 0) {
        const served = await reg().resolve(repository, 'peer-0');
        notes.push(
          served === digest
            ? 'retag: the peer push of peer-0 kept the source digest (same manifest bytes)'
            : `retag: the peer push of peer-0 produced ${served}, not the source digest ${digest}`,
        );
      }
      await removeLocal([`${name}:peer-${rep}`, srcRef]);
    },
  };

  return {
    name: 'retag',
    notes,
    variants: [putTag, copy, peer],
    rows: [
      {
        id: '1',
        title: `retag a pushed image (~${PAYLOAD_BYTES / 1024 / 1024} MiB layer + root)`,
        slipway: putTag.key,
        peer: peer.key,
      },
      { id: '1b', title: 'retag, verified copy (promote path)', slipway: copy.key, peer: peer.key },
    ],
    async setup() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-retag-'));
      try {
        await writeFile(path.join(dir, 'payload.bin'), randomBytes(PAYLOAD_BYTES));
        await writeFile(
          path.join(dir, 'Dockerfile'),
          `FROM ${config.rootImage}\nCOPY payload.bin /payload.bin\n`,
        );
        await docker(['build', '--pull=false', '-t', srcRef, dir]);
        await docker(['push', srcRef]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      registry = await openRegistry(`oci://${config.registryAddr}`, { env: process.env });
      const resolved = await registry.resolve(repository, 'src');
      if (!resolved) throw new Error(`retag: ${srcRef} was pushed but does not resolve`);
      digest = resolved;
      notes.push(`retag: source image ${srcRef} = ${digest}`);
      await removeLocal([srcRef]);
    },
    async teardown() {
      await removeLocal([srcRef, ...peerTags]);
    },
  };
}
