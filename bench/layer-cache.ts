// `npm run bench:cache`: layer reuse on a fresh runner. The manifest's two images are published
// once; then, BENCH_REPS times (default 3) per variant, the engine is emptied of everything this
// bench made (its images and its BuildKit cache records), one template changes (a new commit,
// pinned and staged), and the plan is published again. Measured per variant: wall time, and the
// bytes the engine pulled from and pushed to the registry (counted by a loopback proxy in front
// of it). Variants: BuildKit with the registry as cache source (the default of a publish), the
// classic builder (which pulls {env}-latest first), and a build without any cache.
//
// Needs the local services (`npm run services up`). Creates only `bench/cache-<run>/…`
// repositories in the registry and removes every local image, build cache record and temp dir
// it made. Results are printed and written to bench/cache-results.json.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { DEFAULT_TIMEOUTS } from '../src/core/timeouts.js';
import {
  dockerConnectionFromEnv,
  dockerEngine,
  loadManifest,
  makePlan,
  openRegistry,
  publishPlan,
  Redactor,
  silentSink,
  sourceFor,
  stageTemplates,
} from '../src/index.js';
import { pruneBuildCache } from '../test/support/build-cache.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const REPS = Math.max(1, Number(process.env.BENCH_REPS) || 3);
const registryAddr = process.env.SLIPWAY_REGISTRY_ADDR ?? '127.0.0.1:5000';
const rootImage = process.env.SLIPWAY_ROOT_IMAGE ?? 'slipway.local/root:busybox';
const run = randomBytes(4).toString('hex');
const prefix = `bench/cache-${run}`;
const docker = new Docker();

/** A loopback proxy in front of the registry counting blob bytes each way. */
class ByteCounter {
  pulled = 0;
  pushed = 0;
  private readonly sockets = new Set<net.Socket>();
  readonly server = http.createServer((req, res) => {
    const blob = /\/blobs\//.test(req.url ?? '');
    const upload = blob && (req.method === 'PATCH' || req.method === 'PUT');
    if (upload) req.on('data', (c: Buffer) => (this.pushed += c.length));
    const [host, port] = registryAddr.split(':');
    const up = http.request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (blob && req.method === 'GET') r.on('data', (c: Buffer) => (this.pulled += c.length));
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  constructor() {
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

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

interface Sample {
  readonly ms: number;
  readonly pulledBytes: number;
  readonly pushedBytes: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

async function main(): Promise<void> {
  const counter = new ByteCounter();
  const port = await counter.listen();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-cache-'));
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-cache-templates-'));
  try {
    // The project: the repository's Dockerfiles and template, with a first step unique to this
    // run (so no earlier build on this shared engine can serve as a cache) that stands for a real
    // base image's dependency install: 8 MiB of new content and 3 s of work. The reference
    // platform image alone is a few KiB of scripts, where a cache has nothing to save.
    for (const p of ['dockerfiles', 'templates/platform-agent', '.dockerignore'])
      cpSync(path.join(repo, p), path.join(dir, p), { recursive: true });
    const platformDockerfile = path.join(dir, 'dockerfiles/Dockerfile.platform');
    const text = readFileSync(platformDockerfile, 'utf8');
    writeFileSync(
      platformDockerfile,
      text.replace(
        /^(FROM .*)$/m,
        `$1\nRUN echo bench-${run} > /.bench-run && head -c 8388608 /dev/urandom > /opt/bench-deps && sleep 3`,
      ),
    );
    git(dir, 'init', '-q');
    const writeManifest = () => {
      git(dir, 'add', '-A');
      git(dir, 'commit', '-q', '--allow-empty', '-m', 'bench');
      const m = JSON.parse(readFileSync(path.join(repo, 'manifest.json'), 'utf8'));
      delete m.$schema;
      m.templates['platform-agent'].ref = git(dir, 'rev-parse', 'HEAD');
      m.images.platform.repository = `${prefix}/platform`;
      m.images.platform.buildArgs = { ROOT_IMAGE: rootImage };
      m.images['platform-agent'].repository = `${prefix}/molecule-platform-agent`;
      m.publish.registry = `oci://127.0.0.1:${port}`;
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
    };
    const engine = dockerEngine(dockerConnectionFromEnv(process.env));
    const registry = await openRegistry(`oci://127.0.0.1:${port}`, {});
    const ports = {
      engine,
      registry,
      sink: silentSink,
      redactor: new Redactor(),
      clock: () => new Date(),
      timeouts: DEFAULT_TIMEOUTS,
    };

    const publish = async (
      env: string,
      options: { buildkit: boolean; noCache: boolean },
    ): Promise<Sample> => {
      writeManifest();
      const loaded = await loadManifest(path.join(dir, 'manifest.json'));
      const receipt = await stageTemplates(loaded, {
        sources: (t, ctx) => sourceFor(t, ctx),
        sink: silentSink,
        cacheDir,
      });
      const plan = await makePlan(loaded, { env, sha: randomBytes(20).toString('hex'), receipt });
      counter.reset();
      const start = performance.now();
      await publishPlan(loaded, plan, options, ports);
      return {
        ms: performance.now() - start,
        pulledBytes: counter.pulled,
        pushedBytes: counter.pushed,
      };
    };
    const emptyEngine = async () => {
      const images = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
      const isAgent = (i: Docker.ImageInfo) =>
        [...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].join().includes('agent');
      for (const i of images.sort((a, b) => Number(isAgent(b)) - Number(isAgent(a))))
        await docker
          .getImage(i.Id)
          .remove({ force: true })
          .catch(() => undefined);
      await pruneBuildCache(docker, `bench-${run}`);
    };
    const changeTemplate = (rep: number, variant: string) =>
      writeFileSync(path.join(dir, 'templates/platform-agent/prompts/bench.md'), `${variant} ${rep}\n`);

    // Each variant has its own env, so its {env}-latest was built by its own builder: the classic
    // builder cannot match a BuildKit-built image as a cache (it has no container config history).
    const variants = [
      {
        key: 'buildkit-registry-cache',
        env: 'bk',
        label: 'BuildKit, cache from the registry (inline cache)',
        buildkit: true,
        noCache: false,
      },
      {
        key: 'classic-registry-cache',
        env: 'cl',
        label: 'classic builder, {env}-latest pulled as cache',
        buildkit: false,
        noCache: false,
      },
      { key: 'no-cache', env: 'nc', label: 'no cache (every step runs)', buildkit: true, noCache: true },
    ];
    for (const v of variants) {
      console.error(`layer-cache: first publish of ${v.key} (${prefix}, env ${v.env})`);
      await publish(v.env, { buildkit: v.buildkit, noCache: v.noCache });
    }
    const samples: Record<string, Sample[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
    for (let rep = 0; rep < REPS; rep++) {
      // Rotate the order so no variant always runs right after the same one.
      for (const v of [
        ...variants.slice(rep % variants.length),
        ...variants.slice(0, rep % variants.length),
      ]) {
        await emptyEngine();
        changeTemplate(rep, v.key);
        const s = await publish(v.env, { buildkit: v.buildkit, noCache: v.noCache });
        samples[v.key]?.push(s);
        console.error(
          `layer-cache: ${v.key} rep ${rep + 1}: ${Math.round(s.ms)} ms, pulled ${s.pulledBytes} B, pushed ${s.pushedBytes} B`,
        );
      }
    }
    const results = variants.map((v) => {
      const list = samples[v.key] ?? [];
      return {
        key: v.key,
        label: v.label,
        medianMs: Math.round(median(list.map((s) => s.ms))),
        medianPulledBytes: median(list.map((s) => s.pulledBytes)),
        medianPushedBytes: median(list.map((s) => s.pushedBytes)),
        samples: list,
      };
    });
    const doc = {
      what: 'fresh engine, one template changed: publish the manifest (build both images, push)',
      reps: REPS,
      node: process.version,
      engine: (await docker.version()).Version,
      at: new Date().toISOString(),
      results,
    };
    await writeFile(path.join(here, 'cache-results.json'), `${JSON.stringify(doc, null, 2)}\n`);
    console.log('variant | median ms | pulled | pushed');
    for (const r of results) {
      console.log(
        `${r.label} | ${r.medianMs} | ${(r.medianPulledBytes / 1024).toFixed(0)} KiB | ${(r.medianPushedBytes / 1024).toFixed(0)} KiB`,
      );
    }
    await emptyEngine();
  } finally {
    counter.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
