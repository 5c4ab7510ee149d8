// Scenario 3: the no-change rebuild of the manifest's two images (platform, then platform-agent FROM it).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  buildImages,
  dockerConnectionFromEnv,
  dockerEngine,
  gitSource,
  type LoadedManifest,
  loadManifest,
  makePlan,
  type Plan,
  type PlanInputs,
  silentSink,
  stageTemplates,
} from '../../src/index.js';
import { type Group, plainRunner, type Variant } from '../harness.js';
import type { BenchConfig } from './config.js';

export function buildGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  let loaded: LoadedManifest | undefined;
  let plan: Plan | undefined;
  let planInputs: PlanInputs | undefined;
  let cacheDir = '';
  /** Local tags the bench's own build created (not those that already existed): removed at teardown. */
  let created: string[] = [];
  const platformTag = `bench/platform:peer-${config.runId}`;
  const agentTag = `bench/platform-agent:peer-${config.runId}`;
  const buildArgs = { ROOT_IMAGE: config.rootImage };
  const engine = dockerEngine(dockerConnectionFromEnv(process.env));

  const ready = (): { loaded: LoadedManifest; plan: Plan; planInputs: PlanInputs } => {
    if (!loaded || !plan || !planInputs) throw new Error('build: setup did not run');
    return { loaded, plan, planInputs };
  };
  const slipwayTags = async (repositories: readonly string[]): Promise<Set<string>> => {
    const tags = new Set<string>();
    for (const repository of repositories) {
      const { stdout } = await plainRunner.run('docker', [
        'images',
        '--format',
        '{{.Repository}}:{{.Tag}}',
        repository,
      ]);
      for (const line of stdout.split('\n')) if (line.includes(':slipway-')) tags.add(line.trim());
    }
    return tags;
  };
  const requireReused = (built: Awaited<ReturnType<typeof buildImages>>) => {
    const rebuilt = Object.values(built).filter((b) => !b.reused);
    if (rebuilt.length > 0) {
      throw new Error(
        `build: ${rebuilt.map((b) => b.name).join(', ')} rebuilt; the check was not up to date`,
      );
    }
  };

  const check: Variant = {
    key: 'slipway-build-check',
    side: 'slipway',
    label: 'buildImages (up to date)',
    does: 'per image: read the Dockerfile, walk the build context through .dockerignore and digest it, inspect the base image, hash every input, inspect <repository>:slipway-<input digest>; reuse it when its label matches (no build request reaches the engine)',
    async run() {
      const { loaded, plan } = ready();
      requireReused(await buildImages(loaded, plan, { engine, sink: silentSink }));
    },
  };

  const planAndCheck: Variant = {
    key: 'slipway-plan-build-check',
    side: 'slipway',
    label: 'makePlan + buildImages',
    does: 'what `slipway build` does after preflight: make the plan (one context walk and digest) and run the up-to-date check above',
    async run() {
      const { loaded, planInputs } = ready();
      const fresh = await makePlan(loaded, planInputs);
      requireReused(await buildImages(loaded, fresh, { engine, sink: silentSink }));
    },
  };

  const dockerBuild: Variant = {
    key: 'peer-docker-build',
    side: 'peer',
    label: 'docker build x2 (warm cache)',
    does: "docker build --pull=false of Dockerfile.platform, then Dockerfile.platform-agent with BASE_IMAGE=<that tag>, same context and build args, engine's default builder, warm layer cache: each build sends the context and walks its steps against the cache",
    async run(rep, runner) {
      const { loaded } = ready();
      const common = ['build', '--pull=false'];
      const platform = await runner.run(
        'docker',
        [
          ...common,
          '-f',
          'dockerfiles/Dockerfile.platform',
          '--build-arg',
          `ROOT_IMAGE=${config.rootImage}`,
          '-t',
          platformTag,
          '.',
        ],
        { cwd: loaded.dir },
      );
      const agent = await runner.run(
        'docker',
        [
          ...common,
          '-f',
          'dockerfiles/Dockerfile.platform-agent',
          '--build-arg',
          `BASE_IMAGE=${platformTag}`,
          '-t',
          agentTag,
          '.',
        ],
        { cwd: loaded.dir },
      );
      if (rep === 1) {
        // The first timed repetition: say how much of the peer's work the layer cache answered.
        const out = platform.stdout + agent.stdout;
        const steps = (out.match(/^Step \d+\/\d+ :/gm) ?? []).length;
        const cached = (out.match(/Using cache|CACHED/g) ?? []).length;
        notes.push(
          `build: the peer's warm rebuild ran ${steps || '?'} Dockerfile steps, ${cached} answered from the layer cache (ARG/FROM steps have no cache line)`,
        );
      }
    },
  };

  return {
    name: 'build',
    notes,
    variants: [check, planAndCheck, dockerBuild],
    rows: [
      { id: '3', title: 'no-change rebuild of 2 chained images', slipway: check.key, peer: dockerBuild.key },
      {
        id: '3b',
        title: 'no-change rebuild, incl. planning',
        slipway: planAndCheck.key,
        peer: dockerBuild.key,
      },
    ],
    async setup() {
      loaded = await loadManifest(path.join(config.repo, 'manifest.json'), { cwd: config.repo });
      cacheDir = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-cache-'));
      const receipt = await stageTemplates(loaded, { cacheDir, env: process.env, sink: silentSink });
      planInputs = {
        env: 'bench',
        sha: config.sha,
        receipt,
        buildArgs,
        source: await gitSource(loaded.dir),
      };
      plan = await makePlan(loaded, planInputs);
      const before = await slipwayTags(plan.images.map((i) => i.repository));
      // Build once (or find the images already built): every timed check then finds them up to date.
      const built = await buildImages(loaded, plan, { engine, sink: silentSink });
      // Only what this build made; other processes may build into the same repositories meanwhile.
      created = Object.values(built)
        .filter((b) => !b.reused && !before.has(b.localTag))
        .map((b) => b.localTag);
      notes.push(
        `build: ${Object.values(built)
          .map((b) => `${b.name} ${b.reused ? 'already built' : 'built for the bench'} as ${b.localTag}`)
          .join('; ')}`,
      );
    },
    async teardown() {
      await plainRunner.run('docker', ['image', 'rm', agentTag, platformTag], { allowFail: true });
      // Dependents first: the agent image is built FROM the platform image.
      for (const tag of [...created].reverse()) {
        await plainRunner.run('docker', ['image', 'rm', tag], { allowFail: true });
      }
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    },
  };
}
