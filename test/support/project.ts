/**
 * A temp copy of this repository's layout as a git repository of its own: the reference
 * Dockerfiles, the platform-agent template pinned at the project's own commit through the git
 * source (as the root manifest does), repositories under a test prefix, the local root image.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rootImage } from './services.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** The manifest document, loosely typed for tests to change. */
// biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary manifest fields
export type ManifestDoc = any;

/** A temp project; `remove()` deletes it. */
export interface TempProject {
  readonly dir: string;
  /** The registry repository prefix of the project's images. */
  readonly prefix: string;
  readonly manifestFile: string;
  /** Commits everything and returns the commit. */
  commit(message: string): string;
  /** Writes manifest.json from the root one, pinned at HEAD, repositories under `prefix`. */
  writeManifest(change?: (m: ManifestDoc) => void): void;
  remove(): void;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();
}

/** Creates a project whose images live under the registry repository prefix `prefix`. */
export function tempProject(prefix: string): TempProject {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-project-'));
  for (const p of ['dockerfiles', 'templates/platform-agent', '.dockerignore'])
    cpSync(path.join(repoRoot, p), path.join(dir, p), { recursive: true });
  git(dir, 'init', '-q');
  const project: TempProject = {
    dir,
    prefix,
    manifestFile: path.join(dir, 'manifest.json'),
    commit(message) {
      git(dir, 'add', '-A');
      git(dir, 'commit', '-q', '--allow-empty', '-m', message);
      return git(dir, 'rev-parse', 'HEAD');
    },
    writeManifest(change) {
      const m = JSON.parse(readFileSync(path.join(repoRoot, 'manifest.json'), 'utf8'));
      delete m.$schema;
      m.templates['platform-agent'].ref = git(dir, 'rev-parse', 'HEAD');
      m.images.platform.repository = `${prefix}/platform`;
      m.images.platform.buildArgs = { ROOT_IMAGE: rootImage };
      m.images['platform-agent'].repository = `${prefix}/molecule-platform-agent`;
      change?.(m);
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  project.commit('template');
  return project;
}
