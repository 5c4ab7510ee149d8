import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilePinStore } from '../../src/promote/file-store.js';
import { openPinStore } from '../../src/promote/open.js';
import { openRegistry } from '../../src/publish/open.js';
import { runCli } from '../support/cli.js';
import { pgUrl, registryAddr, requireServices, rootImage } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';
import { digestOf, dropSchema, freshSchemaName, REPO, smoke } from './helpers.js';

let dir: string;
const schemas: string[] = [];

function manifestJson(
  extra: Record<string, unknown> = {},
  agentRepo = 'molecule-ai/molecule-platform-agent',
) {
  return JSON.stringify({
    version: 1,
    images: {
      platform: { dockerfile: 'Dockerfile', repository: 'molecule-ai/platform' },
      'platform-agent': { dockerfile: 'Dockerfile.platform-agent', repository: agentRepo, base: 'platform' },
    },
    pins: { 'platform-agent': { image: 'platform-agent' }, 'seo-agent': { image: 'platform-agent' } },
    ...extra,
  });
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await runCli(args, { cwd: dir, env: { USER: 'tester', ...env } });
  return { ...r, json: (): Record<string, unknown> => JSON.parse(r.stdout) };
}

beforeAll(async () => {
  await requireServices(['postgres', 'registry', 'docker', 'rootImage']);
  dir = makeTempDir('pins-cli');
  await writeFile(path.join(dir, 'manifest.json'), manifestJson());
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  for (const s of schemas) await dropSchema(s);
});

const A = digestOf('cli-a');
const B = digestOf('cli-b');

describe('slipway pins (file store, the default)', () => {
  it('refuses an unsmoked digest, promotes a smoked one, lists, shows history and rolls back', async () => {
    const refused = await run(['--json', 'pins', 'promote', 'platform-agent', `${REPO}@${A}`]);
    expect(refused.code).toBe(1);
    expect(refused.json()).toMatchObject({ ok: false, error: { code: 'GATE_REFUSED' } });
    expect(refused.stderr).toContain(`slipway smoke platform-agent --ref ${REPO}@${A}`);

    const store = new FilePinStore(`file:${path.join(dir, '.slipway', 'pins.json')}`);
    await store.recordSmoke(smoke(A));
    await store.recordSmoke(smoke(B));

    const first = await run(['pins', 'promote', 'platform-agent', `${REPO}@${A}`, '--by', 'alice']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`promoted platform-agent: (no pin) -> ${A}`);
    const second = await run(['--json', 'pins', 'promote', 'platform-agent', `${REPO}@${B}`]);
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({
      ok: true,
      applied: true,
      plan: { from: { digest: A }, to: { digest: B } },
    });

    const list = await run(['--json', 'pins', 'list']);
    expect(list.json().pins).toMatchObject([{ runtime: 'platform-agent', digest: B, updatedBy: 'tester' }]);

    const history = await run(['pins', 'history', 'platform-agent']);
    expect(history.stdout.trim().split('\n')).toHaveLength(2);
    expect(history.stdout).toMatch(/^#2 .* promote .* -> sha256:/);

    const dry = await run(['--json', 'pins', 'rollback', 'platform-agent', '--dry-run']);
    expect(dry.json()).toMatchObject({
      dryRun: true,
      applied: false,
      plan: { kind: 'rollback', to: { digest: A } },
    });
    const back = await run(['pins', 'rollback', 'platform-agent', '--reason', 'bad build', '--by', 'carol']);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(`rolled back platform-agent: ${B} -> ${A}`);
    const pinFile = JSON.parse(await readFile(path.join(dir, '.slipway', 'pins.json'), 'utf8'));
    expect(pinFile.pins['platform-agent'].digest).toBe(A);
    expect(pinFile.history.at(-1)).toMatchObject({ kind: 'rollback', by: 'carol', reason: 'bad build' });
  });

  it('exits 2 for an unknown runtime, another image repository, --force without --reason', async () => {
    const unknown = await run(['pins', 'promote', 'claude-code', `${REPO}@${A}`]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('platform-agent, seo-agent');

    const otherRepo = await run([
      'pins',
      'promote',
      'platform-agent',
      `127.0.0.1:5000/molecule-ai/platform@${A}`,
    ]);
    expect(otherRepo.code).toBe(2);
    expect(otherRepo.stderr).toContain('is not an image of runtime platform-agent');

    const noReason = await run(['pins', 'promote', 'seo-agent', `${REPO}@${B}`, '--force']);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');

    const badExpect = await run(['pins', 'promote', 'seo-agent', `${REPO}@${B}`, '--expect', 'abc']);
    expect(badExpect.code).toBe(2);

    const tagNoRegistry = await run(['pins', 'promote', 'seo-agent', `${REPO}:staging-latest`]);
    expect(tagNoRegistry.code).toBe(2);
    expect(tagNoRegistry.stderr).toContain('--registry');
  });
});

describe('slipway pins (postgres store)', () => {
  it('migrates, promotes with --expect and reports conflicts, never printing the password', async () => {
    const schema = freshSchemaName();
    schemas.push(schema);
    const store = `${pgUrl}?schema=${schema}`;
    const outputs: string[] = [];
    const pins = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = await run(['pins', ...args], env);
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    const unmigrated = await pins(['--store', store, 'list']);
    expect(unmigrated.code).toBe(1);
    expect(unmigrated.stderr).toContain('slipway pins migrate');

    const migrated = await pins(['migrate'], { SLIPWAY_PIN_STORE: store });
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain('applied 1, 2');
    expect((await pins(['migrate', '--store', store])).stdout).toContain('up to date');

    const lib = await openPinStore(pgUrl, { schema });
    try {
      await lib.recordSmoke(smoke(A));
      await lib.recordSmoke(smoke(B));
    } finally {
      await lib.close();
    }
    const first = await pins([
      '--store',
      store,
      'promote',
      'platform-agent',
      `${REPO}@${A}`,
      '--expect',
      'none',
    ]);
    expect(first.code).toBe(0);
    const stale = await pins([
      '--store',
      store,
      'promote',
      'platform-agent',
      `${REPO}@${B}`,
      '--expect',
      'none',
    ]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`expected (no pin), found ${A}`);
    const history = await pins(['--store', store, '--json', 'history', 'platform-agent']);
    expect(history.json().entries).toMatchObject([{ toDigest: A, by: 'tester' }]);

    const down = await pins(['--store', 'postgres://slipway:topsecret-pw@127.0.0.1:1/slipway', 'list']);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('127.0.0.1:1');
    const all = outputs.join('\n');
    expect(all).not.toContain('topsecret-pw');
    expect(all).not.toContain(':slipway@');
  });
});

describe('slipway pins with a real registry', () => {
  it('resolves a tag to its digest, pins the digest and moves --retag after the pin', async () => {
    const repository = `slipway-test/promote-${randomBytes(4).toString('hex')}`;
    const docker = new Docker();
    const image = docker.getImage(rootImage);
    await image.tag({ repo: `${registryAddr}/${repository}`, tag: 'staging-abc' });
    const pushed = docker.getImage(`${registryAddr}/${repository}:staging-abc`);
    const stream = await pushed.push({ authconfig: { serveraddress: registryAddr } });
    const events: Array<{ error?: string }> = await new Promise((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(events.filter((e) => e.error)).toEqual([]);
    await pushed.remove().catch(() => {});

    const registry = await openRegistry(`oci://${registryAddr}`);
    const digest = await registry.resolve(repository, 'staging-abc');
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);

    const mdir = makeTempDir('pins-reg');
    try {
      await writeFile(
        path.join(mdir, 'manifest.json'),
        manifestJson({ publish: { registry: `oci://${registryAddr}` } }, repository),
      );
      const pinStore = new FilePinStore(`file:${path.join(mdir, '.slipway', 'pins.json')}`);
      await pinStore.recordSmoke(smoke(digest ?? '', true, `${registryAddr}/${repository}`));

      const missing = await run([
        '--manifest',
        path.join(mdir, 'manifest.json'),
        'pins',
        'promote',
        'platform-agent',
        `${registryAddr}/${repository}:no-such-tag`,
      ]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no-such-tag does not exist');

      const result = await run([
        '--json',
        '--manifest',
        path.join(mdir, 'manifest.json'),
        'pins',
        'promote',
        'platform-agent',
        `${registryAddr}/${repository}:staging-abc`,
        '--retag',
        'production',
      ]);
      expect(result.code).toBe(0);
      expect(result.json()).toMatchObject({
        applied: true,
        retagged: `${registryAddr}/${repository}:production`,
        pin: { image: `${registryAddr}/${repository}@${digest}`, digest, tag: 'staging-abc' },
      });
      expect(await registry.resolve(repository, 'production')).toBe(digest);
    } finally {
      await rm(mdir, { recursive: true, force: true });
    }
  });
});
