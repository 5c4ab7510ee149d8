/**
 * Temp directories for tests, all named `slipway-<tag>-XXXXXX` and all removed after the test
 * file that made them (test/support/cleanup.ts registers the removal for every file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const made = new Set<string>();

/** A fresh, empty temp dir, removed after the current test file (or earlier with {@link removeTempDir}). */
export function makeTempDir(tag: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `slipway-${tag}-`));
  made.add(dir);
  return dir;
}

/** Removes one dir from {@link makeTempDir} now. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  made.delete(dir);
}

/** Removes every dir {@link makeTempDir} made and has not removed yet. */
export function removeAllTempDirs(): void {
  for (const dir of made) removeTempDir(dir);
}
