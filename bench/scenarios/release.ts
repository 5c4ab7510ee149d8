import { randomBytes } from 'node:crypto';
// End to end: `slipway release` of the repository's two images against the same sequence done with
// the docker CLI and shell (bench/peers/release.sh), cold and warm; and smoke alone against
// `docker run --rm IMAGE test …` for the same assertions.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Group, plainRunner, type Variant } from '../harness.js';
import type { BenchConfig } from './config.js';
import { type Workdir, workdir } from './workdir.js';

/** The release and smoke group. */
export function releaseGroup(config: BenchConfig): Group {
  const notes: string[] = [];
  let wd: Workdir | undefined;
  let agentRef = '';
  const caches = new Set<string>();
  const ready = () => {
    if (!wd) throw new Error('release: setup did not run');
    return wd;
  };
  const peerScript = path.join(config.repo, 'bench', 'peers', 'release.sh');
  const pins = () => `file:${path.join(ready().dir, '.slipway', 'pins.json')}`;
  const release = (cold: boolean): Variant => {
    let cache = '';
    return {
      key: `release-slipway-${cold ? 'cold' : 'warm'}`,
      side: 'slipway',
      label: `slipway release (${cold ? 'cold' : 'warm'})`,
      does: cold
        ? '`slipway release --no-cache --sha <new commit>` with an empty template cache: verify, stage (fetch the pin), build both images without the layer cache, push, smoke both pushed digests and record the verdicts, move the moving tags'
        : '`slipway release` with nothing changed: verify, stage from the cache, both images up to date, tags already pushed (checked, not pushed again), smoke both digests, moving tags already in place',
      async before() {
        cache = await mkdtemp(path.join(os.tmpdir(), 'slipway-bench-xdg-'));
        caches.add(cache);
      },
      async run(_rep, runner) {
        const args = [
          'release',
          '--env',
          'bench',
          '--build-arg',
          `ROOT_IMAGE=${config.rootImage}`,
          '--pins',
          pins(),
          // A cold run is a new commit on a fresh runner: a new sha, so its immutable tags are new
          // too (rebuilding the same sha without the cache would be refused as a changed image).
          ...(cold ? ['--no-cache', '--sha', randomBytes(20).toString('hex')] : []),
        ];
        await ready().slipway(runner, args, { ...config.env, ...(cold ? { XDG_CACHE_HOME: cache } : {}) });
      },
      async after() {
        await rm(cache, { recursive: true, force: true });
        caches.delete(cache);
      },
    };
  };
  const peer = (cold: boolean): Variant => ({
    key: `release-peer-${cold ? 'cold' : 'warm'}`,
    side: 'peer',
    label: `docker CLI + shell (${cold ? 'cold' : 'warm'})`,
    does: `bench/peers/release.sh: stage the template with git archive | tar -x, docker build x2${cold ? ' --no-cache' : ' (warm cache)'}, docker push x2, then one \`docker run --rm IMAGE test …\` per path assertion of the smoke specs; no verification of what was pushed, no verdict record, no moving-tag discipline`,
    async run(_rep, runner) {
      const w = ready();
      await runner.run(
        'bash',
        [
          peerScript,
          w.dir,
          w.peerImage('platform'),
          w.peerImage('platform-agent'),
          config.rootImage,
          cold ? 'cold' : 'warm',
        ],
        { cwd: w.dir },
      );
    },
  });
  const smoke: Variant = {
    key: 'smoke-slipway',
    side: 'slipway',
    label: 'slipway smoke',
    does: "`slipway smoke platform-agent --ref <pushed digest>`: boot the image with an empty /configs volume, wait for readiness, assert the spec's 6 assertions (files, directories, template content digest, no VCS metadata or secrets), record the verdict, remove the container and volumes",
    async run(_rep, runner) {
      await ready().slipway(runner, ['smoke', 'platform-agent', '--ref', agentRef, '--pins', pins()]);
    },
  };
  const dockerRun: Variant = {
    key: 'smoke-docker-run',
    side: 'peer',
    label: 'docker run --rm … test',
    does: 'one `docker run --rm IMAGE sh -c "test …"` per path assertion of the same spec (4: config.yaml, prompts/, mcp_servers/, the MCP server) and one `find` for the absent patterns; no template digest check, no verdict',
    async run(_rep, runner) {
      for (const test of [
        'test -f /configs/config.yaml',
        'test -n "$(ls -A /configs/prompts)"',
        'test -d /configs/mcp_servers',
        'test -e /opt/molecule-mcp-server',
        'test -z "$(find /configs -name .git -o -name .env -o -name "*.pem" -o -name "*.key")"',
      ]) {
        await runner.run('docker', [
          'run',
          '--rm',
          '--entrypoint',
          '/usr/local/bin/identity-fallback.sh',
          agentRef,
          'sh',
          '-c',
          test,
        ]);
      }
    },
  };
  const variants = [release(true), release(false), peer(true), peer(false), smoke, dockerRun];
  return {
    name: 'release',
    notes,
    maxReps: 3,
    variants,
    rows: [
      {
        id: '7a',
        title: 'release both images, cold',
        slipway: 'release-slipway-cold',
        peer: 'release-peer-cold',
      },
      {
        id: '7b',
        title: 'release both images, warm (nothing changed)',
        slipway: 'release-slipway-warm',
        peer: 'release-peer-warm',
      },
      { id: '8', title: 'smoke platform-agent (6 assertions)', slipway: smoke.key, peer: dockerRun.key },
    ],
    async setup() {
      wd = await workdir(config, 'release');
      const out = await wd.slipway(plainRunner, [
        '--json',
        'release',
        '--env',
        'bench',
        '--build-arg',
        `ROOT_IMAGE=${config.rootImage}`,
        '--pins',
        pins(),
      ]);
      const digest = out.match(/platform-agent[^}]*?(sha256:[0-9a-f]{64})/s)?.[1];
      if (!digest)
        throw new Error(`release: no platform-agent digest in the release output:\n${out.slice(0, 400)}`);
      agentRef = `${wd.image('platform-agent')}@${digest}`;
      await wd.dockerBuilds(plainRunner, false);
      notes.push(`release: the repository's two images under ${wd.prefix}; smoke boots ${agentRef}`);
    },
    async teardown() {
      for (const c of caches) await rm(c, { recursive: true, force: true });
      await wd?.dispose();
    },
  };
}
