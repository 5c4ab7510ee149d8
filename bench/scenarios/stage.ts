// Staging N pinned templates: Slipway's `stage` (cold: empty cache; warm: cache filled) against a
// sequential clone script and `git archive | tar -x`, over file:// or a loopback git http-backend.
import { access, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type GitHttpServer, startGitHttp } from '../git-http.js';
import { type Group, plainRunner, type Row, type Variant } from '../harness.js';
import { type TemplateSet, type TemplateSetSpec, templateSet } from '../workloads.js';
import { type BenchConfig, slipway } from './config.js';

/** One staging group: a template set over one transport. */
export interface StageGroupSpec {
  readonly id: string;
  readonly set: TemplateSetSpec;
  readonly transport: 'file' | 'http';
  /** 'full': cold and warm against both peers; 'cold': cold against the clone script only. */
  readonly rows: 'full' | 'cold';
  readonly idPrefix: string;
  readonly maxReps?: number;
}

const MiB = 1024 * 1024;

/** The staging group for `spec`. */
export function stageGroup(config: BenchConfig, spec: StageGroupSpec): Group {
  const notes: string[] = [];
  let set: TemplateSet | undefined;
  let server: GitHttpServer | undefined;
  let work = '';
  let warmCache = '';
  const scratch = new Set<string>();
  const peerScripts = path.join(config.repo, 'bench', 'peers');
  const manifest = () => path.join(work, 'manifest.json');
  const staged = () => path.join(work, 'staged');
  const list = () => path.join(work, 'templates.list');
  const where = spec.transport === 'file' ? 'file://' : 'http';
  const urlOf = (name: string, dir: string) =>
    spec.transport === 'file' ? `file://${dir}` : (server as GitHttpServer).url(name);

  const temp = async (what: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `slipway-bench-${what}-`));
    scratch.add(dir);
    return dir;
  };
  // Set aside, not deleted: a deletion now would slow the next variant's file creation (bench/trash.ts).
  const drop = async (dir: string) => {
    await config.trash.discard(dir);
    scratch.delete(dir);
  };
  const checkStaged = async (dir: string) => {
    // A variant that produced nothing must not pass as fast.
    for (const r of set?.repos ?? []) await access(path.join(dir, r.name, 'config.yaml'));
  };

  const stage =
    (cache: () => string): Variant['run'] =>
    async (_rep, runner) => {
      const c = slipway(config, ['--manifest', manifest(), 'stage', '--cache-dir', cache()]);
      await runner.run(c.cmd, c.args, { env: config.env });
    };
  let coldCache = '';
  const cold: Variant = {
    key: `${spec.id}-slipway-cold`,
    side: 'slipway',
    label: 'slipway stage (empty cache)',
    does:
      spec.transport === 'file'
        ? '`slipway stage` with an empty --cache-dir, as on a fresh CI runner: each pinned commit read where it lies in the local repository (`git archive`, no clone or fetch), written by the system tar while the same bytes (through `tee`) are hashed and checked in one pass (commit id, required files, credential rules), cached by hard link, receipt written'
        : '`slipway stage` with an empty --cache-dir, as on a fresh CI runner: each pin fetched shallow over http (only the pinned commit) into a scratch repository, its `git archive` written by the system tar while the same bytes (through `tee`) are hashed and checked in one pass (commit id, required files, credential rules), cached by hard link, receipt written',
    async before() {
      await config.trash.discard(staged());
      coldCache = await temp('cache');
    },
    run: stage(() => coldCache),
    async after() {
      await checkStaged(staged());
      await drop(coldCache);
    },
  };
  const warm: Variant = {
    key: `${spec.id}-slipway-warm`,
    side: 'slipway',
    label: 'slipway stage (warm cache)',
    does: '`slipway stage` with the cache of an earlier run (a CI cache restored on a fresh checkout): no git or network work; every cached tree re-digested, staged and checked',
    async before() {
      await config.trash.discard(staged());
    },
    run: stage(() => warmCache),
    async after() {
      await checkStaged(staged());
    },
  };
  const script = (file: string, key: string, label: string, does: string): Variant => {
    let dest = '';
    return {
      key: `${spec.id}-${key}`,
      side: 'peer',
      label,
      does,
      async before() {
        dest = await temp(key);
      },
      async run(_rep, runner) {
        await runner.run('bash', [path.join(peerScripts, file), list(), path.join(dest, 'out')], {
          env: config.env,
        });
      },
      async after() {
        await checkStaged(path.join(dest, 'out'));
        await drop(dest);
      },
    };
  };
  const clone = script(
    'clone-manifest.sh',
    'clone',
    'clone script',
    `bench/peers/clone-manifest.sh: per template, one after the other, \`git clone\` over ${where} (full history), \`git checkout <sha>\`, \`rm -rf .git\`; no digest, required-file or credential check, no receipt`,
  );
  const archive = script(
    'archive-manifest.sh',
    'archive',
    'git archive | tar -x',
    spec.transport === 'file'
      ? 'bench/peers/archive-manifest.sh: per template, `git -C <repo> archive <sha> | tar -x` straight from the local repository (no clone at all); no checks'
      : 'bench/peers/archive-manifest.sh: per template, a shallow fetch of the pin into a scratch bare repository (git-http-backend serves no upload-archive), then `git archive <sha> | tar -x`; no checks',
  );

  const size = () =>
    `${spec.set.templates} x ${spec.set.filesPerTemplate} files, ${Math.round((set?.bytes ?? 0) / MiB)} MiB`;
  const rows: Row[] =
    spec.rows === 'full'
      ? [
          {
            id: `${spec.idPrefix}a`,
            title: `stage cold, ${where} vs clone script`,
            slipway: cold.key,
            peer: clone.key,
          },
          {
            id: `${spec.idPrefix}b`,
            title: `stage cold, ${where} vs git archive`,
            slipway: cold.key,
            peer: archive.key,
          },
          {
            id: `${spec.idPrefix}c`,
            title: `stage warm, ${where} vs clone script`,
            slipway: warm.key,
            peer: clone.key,
          },
          {
            id: `${spec.idPrefix}d`,
            title: `stage warm, ${where} vs git archive`,
            slipway: warm.key,
            peer: archive.key,
          },
        ]
      : [
          {
            id: spec.idPrefix,
            title: `stage cold, ${where} vs clone script`,
            slipway: cold.key,
            peer: clone.key,
          },
        ];

  return {
    name: spec.id,
    notes,
    ...(spec.maxReps ? { maxReps: spec.maxReps } : {}),
    variants: spec.rows === 'full' ? [cold, warm, clone, archive] : [cold, clone],
    get rows() {
      // Titles carry the set's size, known after setup.
      return rows.map((r) => ({ ...r, title: `${r.title} (${size()})` }));
    },
    async setup() {
      set = await templateSet(config.workloads, spec.set);
      if (spec.transport === 'http') server = await startGitHttp(set.dir, config.gitExecPath);
      work = await temp(`stage-${spec.id}`);
      const templates: Record<string, unknown> = {};
      const lines: string[] = [];
      for (const r of set.repos) {
        const url = urlOf(r.name, r.dir);
        templates[r.name] = { source: { git: url }, ref: r.sha, required: ['config.yaml'] };
        lines.push(`${r.name} ${url} ${r.sha}`);
      }
      await writeFile(
        manifest(),
        `${JSON.stringify({ version: 1, stagingDir: 'staged', templates, images: {} }, null, 2)}\n`,
      );
      await writeFile(list(), `${lines.join('\n')}\n`);
      await mkdir(staged(), { recursive: true });
      if (spec.rows === 'full') {
        warmCache = await temp('cache-warm');
        const c = slipway(config, ['--manifest', manifest(), 'stage', '--cache-dir', warmCache]);
        await plainRunner.run(c.cmd, c.args, { env: config.env });
      }
      notes.push(
        `${spec.id}: ${set.repos.length} template repositories, ${set.files} files, ${Math.round(set.bytes / MiB)} MiB at the pins, ${spec.set.history + 1} commits each, served over ${spec.transport === 'file' ? 'file://' : `a loopback git http-backend (${server?.origin})`}`,
      );
    },
    async teardown() {
      await server?.close();
      for (const dir of [...scratch]) await drop(dir);
    },
  };
}
