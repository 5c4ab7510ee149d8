// Build-context packing: Slipway's context listing + tar stream (and its context digest) against
// `tar -c` of the same directory, both piped into `cat > /dev/null` (GNU tar skips reading files
// when its archive is /dev/null itself).
import path from 'node:path';
import type { Group, Variant } from '../harness.js';
import { type ContextDir, contextDir } from '../workloads.js';
import type { BenchConfig } from './config.js';

const FILES = 20_000;
const BYTES = 200 * 1000 * 1000;

/** The context packing group. */
export function contextGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  let ctx: ContextDir | undefined;
  const dir = () => {
    if (!ctx) throw new Error('context: setup did not run');
    return ctx.dir;
  };
  const probe = path.join(config.repo, 'bench', 'probes', 'context.mjs');
  const cat = { cmd: 'cat', args: [] };
  const pack: Variant = {
    key: 'context-slipway-pack',
    side: 'slipway',
    label: 'Slipway packContext',
    does: "bench/probes/context.mjs on dist/preflight/ (the stage alone, not the whole library's clients): readBuildContext (walk + .dockerignore) and packContext (deterministic tar: sorted, fixed mtimes and owners) streamed to stdout | cat > /dev/null",
    async run(_rep, runner) {
      await runner.pipe({ cmd: process.execPath, args: [probe, 'pack', dir()] }, cat);
    },
  };
  const digest: Variant = {
    key: 'context-slipway-digest',
    side: 'slipway',
    label: 'Slipway contextDigest',
    does: 'bench/probes/context.mjs on dist/preflight/ (the stage alone): readBuildContext and contextDigest (sha256 of every file, the tree digest the plan records)',
    async run(_rep, runner) {
      await runner.run(process.execPath, [probe, 'digest', dir()]);
    },
  };
  const tar: Variant = {
    key: 'context-tar',
    side: 'peer',
    label: 'tar -c | cat',
    does: 'GNU `tar -c -f - -C DIR .` | cat > /dev/null: the practical limit of reading the context',
    async run(_rep, runner) {
      await runner.pipe({ cmd: 'tar', args: ['-c', '-f', '-', '-C', dir(), '.'] }, cat);
    },
  };
  return {
    name: 'context',
    notes,
    variants: [pack, digest, tar],
    rows: [
      { id: '3a', title: 'pack a 200 MB, 20,000-file build context', slipway: pack.key, peer: tar.key },
      { id: '3b', title: 'digest the same context', slipway: digest.key, peer: tar.key },
    ],
    async setup() {
      ctx = await contextDir(config.workloads, FILES, BYTES);
      notes.push(
        `context: ${ctx.files} files, ${Math.round(ctx.bytes / 1e6)} MB (a third random bytes, the rest text)`,
      );
    },
    async teardown() {},
  };
}
