/**
 * A registry that accepts connections and then stops answering (a hung process or load
 * balancer) must fail the run quickly, name the registry and the step, and leave every moving
 * tag as it was. The proxy holds chosen requests open; the real registry behind it is read
 * directly before and after.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageRef } from '../../src/core/image-ref.js';
import { openRegistry } from '../../src/publish/open.js';
import { runCli } from '../support/cli.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';
import { removeImages, uid } from './fixtures.js';

const SHA1 = 'a1'.repeat(20);
const SHA2 = 'b2'.repeat(20);
const REPOS = ['molecule-ai/platform', 'molecule-ai/molecule-platform-agent'] as const;
let dir: string;
let proxy: RegistryProxy;
let prefix: string;
const builtIds = new Set<string>();

type PushJson = {
  ok: boolean;
  images: Array<{ name: string; repository: string; digest: string }>;
  error?: { code: string; message: string; hint?: string };
};

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(['-m', path.join(dir, 'manifest.json'), ...args], { cwd: dir, env });
}

async function writeManifest(marker: string): Promise<void> {
  await writeFile(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      version: 1,
      images: {
        platform: { dockerfile: 'Dockerfile', repository: REPOS[0] },
        'platform-agent': { dockerfile: 'Dockerfile.platform-agent', repository: REPOS[1], base: 'platform' },
      },
      publish: {
        registry: `oci://${proxy.addr}/${prefix}`,
        ecr: { scanOnPush: false, tagMutability: 'MUTABLE' },
      },
    }),
  );
  await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\nRUN echo "${marker}" > /base-marker\n`);
}

/** What every tag the tests touch resolves to in the real registry (null when absent). */
async function tagsNow(): Promise<Record<string, string | null>> {
  const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
  const out: Record<string, string | null> = {};
  for (const repo of REPOS) {
    for (const tag of ['staging-latest', 'prod', `staging-${SHA1}`]) {
      out[`${repo}:${tag}`] = await direct.resolve(repo, tag);
    }
  }
  return out;
}

async function remember(digests: Array<{ repository: string; digest: string }>): Promise<void> {
  const direct = await openRegistry(`oci://${registryAddr}`);
  for (const i of digests) {
    const id = await direct.configDigest(ImageRef.parse(i.repository).repository, i.digest);
    if (id) builtIds.add(id);
  }
}

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  dir = makeTempDir('timeouts');
  proxy = await RegistryProxy.start({ upstream: registryAddr });
  prefix = `slipway-test/timeouts-${uid()}`;
  await writeFile(
    path.join(dir, 'Dockerfile.platform-agent'),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a JS one
    'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo agent > /agent-marker\n',
  );
  await writeManifest(`timeouts-${uid()}`);
  expect((await run(['stage'])).code).toBe(0);
  const first = await run(['--json', 'push', '--env', 'staging', '--sha', SHA1]);
  expect(first.code, first.stderr).toBe(0);
  await remember((JSON.parse(first.stdout) as PushJson).images);
});

afterAll(async () => {
  await proxy?.close();
  await removeImages(...[...builtIds].reverse());
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a stalled registry', () => {
  it('slipway tag (SLIPWAY_TIMEOUT=1s) exits 3 within seconds, naming the registry and the step; no tag moves', async () => {
    const before = await tagsNow();
    expect(before[`${REPOS[0]}:staging-latest`]).toMatch(/^sha256:/);
    const stall = proxy.stall({ path: /^\/v2\// });
    try {
      const started = Date.now();
      const out = await run(['tag', `${REPOS[0]}:staging-latest`, `${REPOS[0]}:prod`], {
        SLIPWAY_TIMEOUT: '1s',
      });
      const elapsed = Date.now() - started;
      expect(out.code, out.stderr).toBe(3);
      // 1 s per request, 2 s for the retried operation; well under the 20 minutes of old.
      expect(elapsed).toBeLessThan(8_000);
      expect(stall.held).toBeGreaterThanOrEqual(1);
      expect(out.stderr).toContain(
        `error: resolve ${prefix}/${REPOS[0]}:staging-latest: registry ${proxy.addr} did not answer within 1s`,
      );
      expect(out.stderr).toMatch(/hint: .*stopped answering.*--timeout or SLIPWAY_TIMEOUT/);
      expect(out.stderr).not.toMatch(/\n\s+at /);
    } finally {
      stall.times = 0;
    }
    expect(await tagsNow()).toEqual(before);
  });

  it('slipway push --timeout 1s: a moving-tag write that hangs fails the push, restores the tag already moved, exit 1', async () => {
    const before = await tagsNow();
    await writeManifest(`timeouts-${uid()}`);
    // The base's staging-latest moves first; the agent's then hangs, so the rollback must run.
    const stall = proxy.stall({
      method: 'PUT',
      path: /\/molecule-platform-agent\/manifests\/staging-latest$/,
    });
    let out: Awaited<ReturnType<typeof run>>;
    try {
      out = await run(['--timeout', '1s', '--json', 'push', '--env', 'staging', '--sha', SHA2]);
    } finally {
      stall.times = 0;
    }
    const ended = Date.now();
    expect(out.code, out.stderr).toBe(1);
    expect(stall.firstAt).toBeGreaterThan(0);
    // From the first held request to the exit: one 2 s operation deadline plus the rollback.
    expect(ended - stall.firstAt).toBeLessThan(10_000);
    const json = JSON.parse(out.stdout) as PushJson;
    expect(json.error?.code).toBe('PUSH_FAILED');
    expect(json.error?.message).toContain(
      `write manifest ${prefix}/${REPOS[1]}:staging-latest: registry ${proxy.addr} did not answer within 1s`,
    );
    expect(json.error?.message).toContain('moving tags were not changed (1 moved tag was restored)');
    const after = await tagsNow();
    expect(after).toEqual(before);
    const direct = await openRegistry(`oci://${registryAddr}/${prefix}`);
    const pushed = [];
    for (const repo of REPOS) {
      const digest = await direct.resolve(repo, `staging-${SHA2}`);
      if (digest) pushed.push({ repository: `${registryAddr}/${prefix}/${repo}`, digest });
    }
    expect(pushed).toHaveLength(2);
    await remember(pushed);
  });
});
