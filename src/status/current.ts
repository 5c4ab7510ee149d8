import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256Hex } from '../core/tree-digest.js';
import type { LoadedManifest } from '../manifest/load.js';
import { argsDigest } from '../plan/plan.js';
import { contextDigest, readBuildContext } from '../preflight/context.js';
import type { StagingReceipt } from '../stage/receipt.js';
import type { CurrentInputs } from './types.js';

/**
 * What the current checkout would build, per image, without building: the digests a release
 * records in the `dev.slipway.*-digest` labels (see plan/plan.ts `inputLabels`). The base's
 * image ID is only known after building, so the base is compared through its own status.
 */
export async function currentInputs(
  loaded: LoadedManifest,
  receipt: StagingReceipt | null,
  names: readonly string[],
  buildArgs: Readonly<Record<string, string>> = {},
): Promise<Record<string, CurrentInputs>> {
  const { manifest } = loaded;
  const contexts = new Map<string, Promise<string | null>>();
  const out: Record<string, CurrentInputs> = {};
  for (const name of names) {
    const image = manifest.images[name];
    if (!image) continue;
    const dockerfile = await readFile(path.resolve(loaded.dir, image.dockerfile)).catch(() => null);
    const dir = path.resolve(loaded.dir, image.context);
    let context = contexts.get(dir);
    if (!context) {
      // An unreadable context is reported as a changed input; verify explains it in detail.
      context = readBuildContext(dir)
        .then(contextDigest)
        .catch(() => null);
      contexts.set(dir, context);
    }
    out[name] = {
      dockerfileDigest: dockerfile ? `sha256:${sha256Hex(dockerfile)}` : null,
      contextDigest: await context,
      argsDigest: argsDigest({ ...image.buildArgs, ...buildArgs }, image.target ?? null),
      templates: image.templates.map((t) => {
        const ref = manifest.templates[t]?.ref ?? null;
        const staged = receipt?.templates[t];
        // Content is known only when the receipt staged the ref the manifest pins now.
        return { name: t, ref, digest: staged && staged.ref === ref ? staged.digest : null };
      }),
      base: image.base ?? null,
    };
  }
  return out;
}
