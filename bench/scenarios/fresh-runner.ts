// Layer reuse on a fresh runner: before every repetition the engine is emptied of everything this
// group made (its images and its BuildKit cache records, nothing else), one template changes (a
// new commit, pinned and staged), and the manifest's two images are published again. Both sides
// are Slipway (bench/probes/publish.mjs on dist/, the pipeline `slipway push` runs): with the
// registry as layer cache (BuildKit inline cache, or the classic builder pulling {env}-latest
// first) against a publish without any cache. The registry is reached through a loopback proxy
// counting the blob bytes pulled and pushed; their medians go in the notes.
//
// The platform image gets one extra first step unique to the run (so no earlier build on the
// shared engine can serve as a cache) standing for a real base's dependency install: 8 MiB of new
// content and 3 s of work. The reference platform image alone is a few KiB of scripts, where a
// cache has nothing to save.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { pruneBuildCache } from '../../test/support/build-cache.js';
import { type Group, plainRunner, type Variant } from '../harness.js';
import { median } from '../stats.js';
import { type BenchConfig, benchRepository, slipway } from './config.js';

/** A loopback proxy in front of the registry counting blob bytes each way. */
class ByteCounter {
  pulled = 0;
  pushed = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: http.Server;

  constructor(upstream: string) {
    const [host, port] = upstream.split(':');
    this.server = http.createServer((req, res) => {
      const blob = /\/blobs\//.test(req.url ?? '');
      if (blob && (req.method === 'PATCH' || req.method === 'PUT'))
        req.on('data', (c: Buffer) => {
          this.pushed += c.length;
        });
      const up = http.request(
        { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          if (blob && req.method === 'GET')
            r.on('data', (c: Buffer) => {
              this.pulled += c.length;
            });
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  reset(): void {
    this.pulled = 0;
    this.pushed = 0;
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

interface Bytes {
  readonly pulled: number;
  readonly pushed: number;
}

const kib = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;

/** The fresh-runner group: rows 10a (BuildKit registry cache) and 10b (classic, pull first) against no cache. */
export function freshRunnerGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  const prefix = benchRepository(config, 'fresh-runner');
  const nonce = `slipway-bench-${config.runId}-fresh`;
  const docker = new Docker();
  const bytes = new Map<string, Bytes[]>();
  let counter: ByteCounter | undefined;
  let proxyPort = 0;
  let dir = '';
  let cacheDir = '';
  const manifestFile = () => path.join(dir, 'manifest.json');
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@slipway.invalid', ...args], {
      cwd: dir,
      encoding: 'utf8',
    }).trim();

  /** Our images: every local image under the group's prefix, with or without a registry host. */
  const ourImages = async (): Promise<Set<string>> => {
    const { stdout } = await plainRunner.run('docker', [
      'images',
      '--digests',
      '--format',
      '{{.Repository}} {{.ID}}',
    ]);
    return new Set(
      stdout
        .split('\n')
        .filter((l) => {
          // Slipway's local tags have no registry host; pulled and pushed names have the proxy's.
          const repository = l.split(' ')[0] ?? '';
          return repository.startsWith(`${prefix}/`) || repository.includes(`/${prefix}/`);
        })
        .map((l) => l.split(' ')[1] ?? '')
        .filter(Boolean),
    );
  };
  /** Untimed: the engine without anything this group made (other images and caches are left alone). */
  const emptyEngine = async (): Promise<void> => {
    // A base whose dependent is still there survives a pass: a few passes, newest (dependents) first.
    for (let pass = 0; pass < 3; pass += 1) {
      const mine = await ourImages();
      if (mine.size === 0) break;
      for (const id of mine)
        await plainRunner.run('docker', ['image', 'rm', '--force', id], { allowFail: true });
    }
    await pruneBuildCache(docker, nonce);
  };

  /** Untimed: one template changed in a new commit, pinned in the manifest and staged. */
  const changeAndStage = async (key: string, rep: number): Promise<void> => {
    await writeFile(path.join(dir, 'templates/platform-agent/prompts/bench.md'), `${key} ${rep}\n`);
    git('add', '-A');
    git('commit', '-q', '-m', `bench ${key} ${rep}`);
    const m = JSON.parse(await readFile(path.join(config.repo, 'manifest.json'), 'utf8'));
    delete m.$schema;
    m.templates['platform-agent'].ref = git('rev-parse', 'HEAD');
    m.images.platform.repository = `${prefix}/platform`;
    m.images.platform.buildArgs = { ROOT_IMAGE: config.rootImage };
    m.images['platform-agent'].repository = `${prefix}/platform-agent`;
    m.publish.registry = `oci://127.0.0.1:${proxyPort}`;
    await writeFile(manifestFile(), `${JSON.stringify(m, null, 2)}\n`);
    const c = slipway(config, ['--manifest', manifestFile(), 'stage', '--cache-dir', cacheDir]);
    await plainRunner.run(c.cmd, c.args, { cwd: dir, env: config.env });
  };

  // Each variant has its own env, so its {env}-latest was built by its own builder: the classic
  // builder cannot match a BuildKit-built image as a cache (it has no container config history).
  const variant = (
    key: string,
    env: string,
    side: 'slipway' | 'peer',
    label: string,
    does: string,
    builder: 'buildkit' | 'classic',
    cache: 'cache' | 'no-cache',
  ): Variant => ({
    key,
    side,
    label,
    does,
    async before(rep) {
      await emptyEngine();
      await changeAndStage(key, rep);
      counter?.reset();
    },
    async run(_rep, runner) {
      const probe = path.join(config.repo, 'bench', 'probes', 'publish.mjs');
      const sha = randomBytes(20).toString('hex');
      await runner.run(process.execPath, [probe, manifestFile(), env, sha, builder, cache], {
        cwd: dir,
        env: config.env,
      });
    },
    async after(rep) {
      // Repetition 0 is the warm-up (and the first publish of the env: nothing to reuse yet).
      if (rep > 0 && counter) bytes.get(key)?.push({ pulled: counter.pulled, pushed: counter.pushed });
    },
  });
  const buildkitCache = variant(
    'fresh-buildkit-cache',
    'bk',
    'slipway',
    'publish, BuildKit, registry cache',
    "on an engine emptied of this bench's images and build cache, one template changed: bench/probes/publish.mjs on dist/ (plan from the staged receipt, then the pipeline `slipway push --buildkit` runs): both images built with BuildKit, `cache-from` the previous {env}-latest and the base in the registry (inline cache: only the layers of cache hits are fetched), pushed, verified, tags moved",
    'buildkit',
    'cache',
  );
  const classicCache = variant(
    'fresh-classic-cache',
    'cl',
    'slipway',
    'publish, classic builder, {env}-latest pulled as cache',
    'the same as the BuildKit variant with the classic builder (`slipway push` without --buildkit): the previous {env}-latest is pulled whole by its digest first, then used as `cache-from`',
    'classic',
    'cache',
  );
  const noCache = variant(
    'fresh-no-cache',
    'nc',
    'peer',
    'publish, no cache',
    'the same publish with BuildKit and no layer cache (`noCache`, what `build --no-cache` does; `push` has no such flag): every step of both images runs, every layer is pushed',
    'buildkit',
    'no-cache',
  );
  const variants = [buildkitCache, classicCache, noCache];
  for (const v of variants) bytes.set(v.key, []);

  return {
    name: 'fresh-runner',
    notes,
    variants,
    maxReps: 3,
    rows: [
      {
        id: '10a',
        title: 'fresh runner, one template changed: BuildKit registry cache vs no cache',
        slipway: buildkitCache.key,
        peer: noCache.key,
      },
      {
        id: '10b',
        title: 'fresh runner, one template changed: classic builder, {env}-latest pulled, vs no cache',
        slipway: classicCache.key,
        peer: noCache.key,
      },
    ],
    async setup() {
      counter = new ByteCounter(config.registryAddr);
      proxyPort = await counter.listen();
      dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-fresh-'));
      cacheDir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-fresh-templates-'));
      for (const p of ['dockerfiles', 'templates/platform-agent', '.dockerignore'])
        await cp(path.join(config.repo, p), path.join(dir, p), { recursive: true });
      const dockerfile = path.join(dir, 'dockerfiles/Dockerfile.platform');
      const text = await readFile(dockerfile, 'utf8');
      await writeFile(
        dockerfile,
        text.replace(
          /^(FROM .*)$/m,
          `$1\nRUN echo ${nonce} > /.bench-run && head -c 8388608 /dev/urandom > /opt/bench-deps && sleep 3`,
        ),
      );
      git('init', '-q');
      notes.push(
        `fresh-runner: the repository's two images under ${prefix}/ through a byte-counting proxy on 127.0.0.1:${proxyPort}; the platform image has an extra first step (8 MiB, 3 s)`,
      );
    },
    async teardown() {
      for (const v of variants) {
        const list = bytes.get(v.key) ?? [];
        if (list.length === 0) continue;
        notes.push(
          `fresh-runner ${v.label}: median per repetition pulled ${kib(median(list.map((b) => b.pulled)))}, pushed ${kib(median(list.map((b) => b.pushed)))} of blobs`,
        );
      }
      try {
        await emptyEngine();
        const left = await ourImages();
        const records = await pruneBuildCache(docker, nonce);
        if (left.size > 0 || records > 0)
          notes.push(
            `fresh-runner: cleanup left ${left.size} image(s), pruned ${records} late cache record(s)`,
          );
      } finally {
        counter?.close();
        if (dir) await rm(dir, { recursive: true, force: true });
        if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
      }
    },
  };
}
