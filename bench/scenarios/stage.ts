// Scenario 2: stage the repository's own pinned template (platform-agent, git source ".").
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type LoadedManifest, loadManifest, silentSink, stageTemplates } from '../../src/index.js';
import type { Group, Variant } from '../harness.js';
import type { BenchConfig } from './config.js';

const TEMPLATE = 'platform-agent';

export function stageGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  let loaded: LoadedManifest | undefined;
  let cacheDir = '';
  let ref = '';
  let subdir = '';
  const peerDirs = new Map<number, string>();

  const manifest = (): LoadedManifest => {
    if (!loaded) throw new Error('stage: setup did not run');
    return loaded;
  };
  const peerDir = async (key: string, rep: number): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `slipway-bench-${key}-`));
    peerDirs.set(rep, dir);
    return dir;
  };
  const dirOf = (rep: number): string => {
    const dir = peerDirs.get(rep);
    if (!dir) throw new Error(`stage: no directory for repetition ${rep}`);
    return dir;
  };
  const cleanPeer = async (rep: number, staged: string) => {
    const dir = dirOf(rep);
    // A peer that produced nothing must not pass as fast.
    if (rep === 0) await stat(path.join(dir, staged, 'config.yaml'));
    await rm(dir, { recursive: true, force: true });
    peerDirs.delete(rep);
  };

  const warm: Variant = {
    key: 'slipway-stage-warm',
    side: 'slipway',
    label: 'stageTemplates (warm cache)',
    does: 'lock the staging dir, read the cached tree of (source, commit, subdir), re-digest it against the cache marker, materialise it with the include/exclude and credential-file rules, check required files, rename into place, write the receipt atomically',
    async run() {
      await stageTemplates(manifest(), { cacheDir, env: process.env, sink: silentSink });
    },
  };

  const cold: Variant = {
    key: 'slipway-stage-cold',
    side: 'slipway',
    label: 'stageTemplates (noCache)',
    does: 'as warm, but fetch the pinned commit every time: git init --bare in a scratch dir, git fetch --depth 1 <repo> <sha>, git cat-file, git archive <sha>:<subdir> extracted safely',
    async run() {
      await stageTemplates(manifest(), { noCache: true, env: process.env, sink: silentSink });
    },
  };

  const clone: Variant = {
    key: 'peer-git-clone',
    side: 'peer',
    label: 'git clone --no-checkout + checkout',
    does: 'git clone --no-checkout of the repository (local path: objects are hard-linked) into a temp dir, then git checkout <sha> -- templates/platform-agent; no required-file check, no credential-file rules, no digest or receipt',
    async before(rep) {
      await peerDir('clone', rep);
    },
    async run(rep, runner) {
      const dest = path.join(dirOf(rep), 'clone');
      await runner.run('git', ['clone', '--quiet', '--no-checkout', config.repo, dest]);
      await runner.run('git', ['-C', dest, 'checkout', ref, '--', subdir]);
    },
    async after(rep) {
      await cleanPeer(rep, path.join('clone', subdir));
    },
  };

  const archive: Variant = {
    key: 'peer-git-archive',
    side: 'peer',
    label: 'git archive | tar -x',
    does: 'git archive <sha> templates/platform-agent straight from the repository, piped into tar -x in a temp dir; no checks, no digest or receipt',
    async before(rep) {
      await peerDir('archive', rep);
    },
    async run(rep, runner) {
      await runner.pipe(
        { cmd: 'git', args: ['-C', config.repo, 'archive', '--format=tar', ref, subdir] },
        { cmd: 'tar', args: ['-x', '-C', dirOf(rep)] },
      );
    },
    async after(rep) {
      await cleanPeer(rep, subdir);
    },
  };

  return {
    name: 'stage',
    notes,
    variants: [warm, cold, clone, archive],
    rows: [
      { id: '2', title: 'stage the pinned template, warm', slipway: warm.key, peer: clone.key },
      { id: '2b', title: 'stage warm vs the cheapest peer', slipway: warm.key, peer: archive.key },
      { id: '2c', title: 'stage without Slipway cache', slipway: cold.key, peer: clone.key },
    ],
    async setup() {
      loaded = await loadManifest(path.join(config.repo, 'manifest.json'), { cwd: config.repo });
      const template = loaded.manifest.templates[TEMPLATE];
      if (!template || !('git' in template.source) || !template.ref) {
        throw new Error(`stage: manifest.json has no git-sourced template "${TEMPLATE}" pinned by commit`);
      }
      ref = template.ref;
      subdir = template.source.subdir ?? '';
      cacheDir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-cache-'));
      const receipt = await stageTemplates(loaded, { cacheDir, env: process.env, sink: silentSink });
      const staged = receipt.templates[TEMPLATE];
      notes.push(
        `stage: ${TEMPLATE} at ${ref.slice(0, 12)} (${subdir}), ${staged?.files ?? '?'} files, ${staged?.bytes ?? '?'} bytes`,
      );
    },
    async teardown() {
      for (const dir of peerDirs.values()) await rm(dir, { recursive: true, force: true });
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}
