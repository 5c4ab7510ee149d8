/** Temp-dir repository layouts for build and preflight tests. */
import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type LoadedManifest, loadManifest } from '../../src/manifest/load.js';
import type { ManifestInput } from '../../src/manifest/schema.js';
import { digestDirectory } from '../../src/sources/tree.js';
import { RECEIPT_FILE, type StagingReceipt } from '../../src/stage/receipt.js';
import { rootImage } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';

/** The repository root (the reference Dockerfiles and template live there). */
export const repoRoot = path.resolve(import.meta.dirname, '../..');
/** The commit the test manifests pin the platform-agent template at. */
export const REF = 'a'.repeat(40);

/** Writes `files` (path -> content; a trailing `*` in the path marks it executable) under a new temp dir. */
export function writeTree(files: Record<string, string>, dir = makeTempDir('build')): string {
  for (const [rel, content] of Object.entries(files)) {
    const exec = rel.endsWith('*');
    const file = path.join(dir, exec ? rel.slice(0, -1) : rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    if (exec) chmodSync(file, 0o755);
  }
  return dir;
}

/** Writes the files and `manifest.json`, then loads it. */
export async function layout(
  manifest: ManifestInput,
  files: Record<string, string>,
): Promise<LoadedManifest> {
  const dir = writeTree({ ...files, 'manifest.json': JSON.stringify(manifest, null, 2) });
  return loadManifest(path.join(dir, 'manifest.json'));
}

/** The staging path of a template, relative to the manifest directory. */
export const staged = (name: string) => `.tenant-bundle-deps/workspace-configs-templates/${name}`;

/** A pinned git template entry. */
export const gitTemplate = (ref = 'a'.repeat(40)) => ({
  source: { git: 'https://git.example.com/t.git' },
  ref,
});

/** A temp copy of the repository layout with the platform-agent template staged and a receipt written. */
export async function stagedRepo(run: string): Promise<{ loaded: LoadedManifest; receipt: StagingReceipt }> {
  const dir = writeTree({});
  cpSync(path.join(repoRoot, 'dockerfiles'), path.join(dir, 'dockerfiles'), { recursive: true });
  cpSync(path.join(repoRoot, '.dockerignore'), path.join(dir, '.dockerignore'));
  const stagedDir = path.join(dir, staged('platform-agent'));
  mkdirSync(path.dirname(stagedDir), { recursive: true });
  cpSync(path.join(repoRoot, 'templates/platform-agent'), stagedDir, { recursive: true });
  const d = await digestDirectory(stagedDir);
  const receipt: StagingReceipt = {
    version: 1,
    stagingDir: '.tenant-bundle-deps/workspace-configs-templates',
    templates: {
      'platform-agent': {
        name: 'platform-agent',
        source: 'git https://git.example.com/templates.git',
        ref: REF,
        digest: d.digest,
        files: d.files,
        bytes: d.bytes,
        dir: staged('platform-agent'),
      },
    },
  };
  writeFileSync(
    path.join(dir, '.tenant-bundle-deps/workspace-configs-templates', RECEIPT_FILE),
    JSON.stringify(receipt),
  );
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      templates: { 'platform-agent': { source: { git: 'https://git.example.com/templates.git' }, ref: REF } },
      images: {
        platform: {
          dockerfile: 'dockerfiles/Dockerfile.platform',
          repository: `slipway-test/platform-${run}`,
          buildArgs: { ROOT_IMAGE: rootImage },
        },
        'platform-agent': {
          dockerfile: 'dockerfiles/Dockerfile.platform-agent',
          repository: `slipway-test/molecule-platform-agent-${run}`,
          base: 'platform',
          templates: ['platform-agent'],
        },
      },
    }),
  );
  return { loaded: await loadManifest(path.join(dir, 'manifest.json')), receipt };
}
