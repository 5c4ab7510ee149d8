import { stat } from 'node:fs/promises';
import path from 'node:path';
import { templateDigestLabel, templateRefLabel } from '../core/labels.js';
import { treeDigest } from '../core/tree-digest.js';
import type { LoadedManifest } from '../manifest/load.js';
import type { SmokeSpec } from '../manifest/schema.js';
import type { StagingReceipt } from '../stage/receipt.js';
import type { ExpectedTemplate } from './assertions.js';
import { dirTreeEntries } from './local-tree.js';

/** The template names a spec's `template` assertions compare against. */
export function templatesAsserted(spec: SmokeSpec | undefined): string[] {
  if (!spec) return [];
  return [...new Set(spec.assertions.flatMap((a) => (a.kind === 'template' ? [a.template] : [])))].sort();
}

/**
 * Expected template content from a staging receipt, for the given names. When the staged
 * directory is still on disk and still hashes to the receipt's digest, its entries are
 * included so a mismatch can name the files that differ.
 */
export async function templatesFromReceipt(
  loaded: LoadedManifest,
  receipt: StagingReceipt,
  names: readonly string[],
): Promise<Record<string, ExpectedTemplate>> {
  const out: Record<string, ExpectedTemplate> = {};
  for (const name of names) {
    const staged = receipt.templates[name];
    if (!staged) continue;
    const base: ExpectedTemplate = {
      digest: staged.digest,
      ref: staged.ref,
      source: 'receipt',
      files: staged.files,
    };
    const dir = path.resolve(loaded.dir, staged.dir);
    const isDir = await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (isDir) {
      const entries = (await dirTreeEntries(dir)).filter((e) => !/(^|\/)\.git(\/|$)/.test(e.path));
      out[name] = treeDigest(entries) === staged.digest ? { ...base, entries } : base;
    } else {
      out[name] = base;
    }
  }
  return out;
}

/** Expected template content from an image's labels (written by the build from the receipt). */
export function templatesFromLabels(
  labels: Readonly<Record<string, string>> | null | undefined,
  names: readonly string[],
): Record<string, ExpectedTemplate> {
  const out: Record<string, ExpectedTemplate> = {};
  for (const name of names) {
    const digest = labels?.[templateDigestLabel(name)];
    if (!digest) continue;
    out[name] = { digest, ref: labels?.[templateRefLabel(name)] ?? null, source: 'label' };
  }
  return out;
}
