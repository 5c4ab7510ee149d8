/**
 * Verdicts travel with the image: a release through a registry that demands credentials
 * attaches signed smoke and provenance attestations; an empty "production" pin store (a file,
 * and PostgreSQL) promotes on them alone; a missing, failed or wrongly signed attestation is
 * refused and says which; a copy into a second registry keeps the digest and the attestations;
 * and the registry password is in no attestation and no output.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachStatement } from '../../src/attest/attest.js';
import { DSSE_MEDIA_TYPE, pemSigner } from '../../src/attest/dsse.js';
import { smokeStatement } from '../../src/attest/statement.js';
import { cosignAttestationTag, RegistryAttestationStore } from '../../src/attest/store.js';
import { Redactor } from '../../src/core/redact.js';
import { openRegistry } from '../../src/publish/open.js';
import type { Registry } from '../../src/publish/registry.js';
import type { SmokeReport } from '../../src/smoke/report.js';
import { dropSchema, freshSchemaName } from '../promote/helpers.js';
import { type CliRun, runCli } from '../support/cli.js';
import { OwnRegistry } from '../support/own-registry.js';
import { type TempProject, tempProject } from '../support/project.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { pgUrl, registryAddr, requireServices } from '../support/services.js';

const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/attest-${run}`;
const AGENT = `${prefix}/molecule-platform-agent`;
const PLATFORM = `${prefix}/platform`;
const PASSWORD = `attest-pw-${randomBytes(8).toString('hex')}`;
const docker = new Docker();

let root: string;
let project: TempProject;
let proxy: RegistryProxy;
let second: OwnRegistry;
let source: Registry;
let schema: string;
const outputs: string[] = [];
const released: { platform: string; agent: string } = { platform: '', agent: '' };

const keyPair = (name: string) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(path.join(root, `${name}.key`), priv, { mode: 0o600 });
  writeFileSync(path.join(root, `${name}.pub`), pub);
  return { priv, key: path.join(root, `${name}.key`), pub: path.join(root, `${name}.pub`) };
};
let signing: ReturnType<typeof keyPair>;
let other: ReturnType<typeof keyPair>;

const env = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: root,
  XDG_CACHE_HOME: path.join(root, 'cache'),
  SLIPWAY_REGISTRY_USERNAME: 'robot',
  SLIPWAY_REGISTRY_PASSWORD: PASSWORD,
});

async function cli(args: string[]): Promise<CliRun> {
  const r = await runCli(args, { cwd: project.dir, env: env() });
  outputs.push(r.stdout, r.stderr);
  return r;
}

const src = () => `oci://${proxy.addr}`;
const ref = (digest: string, repo = AGENT, host = proxy.addr) => `${host}/${repo}@${digest}`;

async function promote(store: string, image: string, extra: string[] = []): Promise<CliRun> {
  return cli([
    '--json',
    'pins',
    '--store',
    store,
    'promote',
    'platform-agent',
    image,
    '--by',
    'prod-operator',
    ...extra,
  ]);
}

const errorOf = (r: CliRun) => (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'postgres', 'rootImage']);
  root = mkdtempSync(path.join(tmpdir(), 'slipway-attest-'));
  signing = keyPair('signing');
  other = keyPair('other');
  proxy = await RegistryProxy.start({
    upstream: registryAddr,
    auth: { mode: 'basic', username: 'robot', password: PASSWORD },
  });
  second = await OwnRegistry.start();
  project = tempProject(prefix);
  project.writeManifest();
  source = await openRegistry(src(), { username: 'robot', password: PASSWORD });
  schema = freshSchemaName();
  const r = await cli([
    '--json',
    'release',
    '--registry',
    src(),
    '--env',
    'staging',
    '--sha',
    randomBytes(20).toString('hex'),
    '--pins',
    `file:${path.join(root, 'staging-pins.json')}`,
    '--sign-key',
    signing.key,
  ]);
  if (r.code !== 0) throw new Error(`release failed (${r.code}): ${r.stderr}`);
  const images = (JSON.parse(r.stdout) as { images: Array<{ name: string; digest: string }> }).images;
  released.platform = images.find((i) => i.name === 'platform')?.digest ?? '';
  released.agent = images.find((i) => i.name === 'platform-agent')?.digest ?? '';
}, 600_000);

afterAll(async () => {
  await proxy?.close();
  await second?.stop();
  if (schema) await dropSchema(schema);
  const mine = await docker.listImages({ filters: { reference: [`*/${prefix}/*`, `${prefix}/*`] } });
  for (const image of mine) {
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => {});
  }
  project?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Listed {
  ok: boolean;
  attestations: Array<{
    predicateType: string;
    signature: string;
    subjectMatches: boolean;
    foundIn: string[];
    statement: { subject: Array<{ digest: { sha256: string } }>; predicate: Record<string, unknown> };
  }>;
}

describe('a release attaches signed attestations', () => {
  it('smoke and provenance of each image, found by digest through the registry and verified with the public key', async () => {
    for (const [repo, digest] of [
      [AGENT, released.agent],
      [PLATFORM, released.platform],
    ] as const) {
      const r = await cli([
        '--json',
        'attestations',
        ref(digest, repo),
        '--registry',
        src(),
        '--key',
        signing.pub,
      ]);
      expect(r.code).toBe(0);
      const listed = JSON.parse(r.stdout) as Listed;
      expect(listed.attestations.map((a) => [a.predicateType, a.signature, a.subjectMatches]).sort()).toEqual(
        [
          ['https://slipway.dev/attestations/smoke/v1', 'verified', true],
          ['https://slsa.dev/provenance/v1', 'verified', true],
        ],
      );
      const smoke = listed.attestations.find((a) => a.predicateType.includes('smoke'));
      expect(smoke?.statement.subject[0]?.digest.sha256).toBe(digest.slice(7));
      expect(smoke?.statement.predicate).toMatchObject({ passed: true, runner: { ci: null } });
      expect((smoke?.statement.predicate.assertions as unknown[] | undefined)?.length).toBeGreaterThan(0);
    }
    // The agent's provenance names its template pin and its base image (the platform digest).
    const r = await cli([
      '--json',
      'attestations',
      ref(released.agent),
      '--registry',
      src(),
      '--key',
      signing.pub,
    ]);
    const prov = (JSON.parse(r.stdout) as Listed).attestations.find((a) => a.predicateType.includes('slsa'));
    const deps =
      (
        prov?.statement.predicate.buildDefinition as
          | { resolvedDependencies: Array<{ name: string; digest: Record<string, string> }> }
          | undefined
      )?.resolvedDependencies ?? [];
    expect(deps.map((d) => d.name)).toEqual([
      'source',
      'template:platform-agent',
      'base-image',
      'dockerfile',
      'context',
    ]);
    expect(deps.find((d) => d.name === 'base-image')?.digest.sha256).toBe(released.platform.slice(7));
    // Stored in the cosign layout: an OCI manifest under sha256-<hex>.att, one DSSE layer each.
    const att = await source.manifest(AGENT, cosignAttestationTag(released.agent));
    const doc = JSON.parse(att?.body.toString() ?? '{}') as {
      layers: Array<{ mediaType: string; annotations: Record<string, string> }>;
    };
    expect(doc.layers.map((l) => [l.mediaType, l.annotations.predicateType]).sort()).toEqual([
      [DSSE_MEDIA_TYPE, 'https://slipway.dev/attestations/smoke/v1'],
      [DSSE_MEDIA_TYPE, 'https://slsa.dev/provenance/v1'],
    ]);
  });

  it('with another key, the signatures do not verify and the command fails', async () => {
    const r = await cli([
      '--json',
      'attestations',
      ref(released.agent),
      '--registry',
      src(),
      '--key',
      other.pub,
    ]);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as Listed).attestations.map((a) => a.signature)).toEqual([
      'wrong-key',
      'wrong-key',
    ]);
  });
});

describe('promotion reads the registry', () => {
  it('an empty production pin store (file) accepts the attested digest without --force', async () => {
    const store = `file:${path.join(root, 'prod-pins.json')}`;
    const r = await promote(store, ref(released.agent), ['--registry', src(), '--key', signing.pub]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      applied: boolean;
      plan: { forced: boolean; gate: { passed: boolean; source: string } };
    };
    expect([out.applied, out.plan.forced, out.plan.gate.passed, out.plan.gate.source]).toEqual([
      true,
      false,
      true,
      'registry',
    ]);
  });

  it('an empty production pin store (PostgreSQL) accepts it too', async () => {
    const store = `${pgUrl}?schema=${schema}`;
    expect((await cli(['pins', '--store', store, 'migrate'])).code).toBe(0);
    const r = await promote(store, ref(released.agent), ['--registry', src(), '--key', signing.pub]);
    expect(r.code, r.stderr).toBe(0);
    const history = await cli(['--json', 'pins', '--store', store, 'history', 'platform-agent']);
    const entries = (JSON.parse(history.stdout) as { entries: Array<{ toDigest: string; forced: boolean }> })
      .entries;
    expect(entries.map((e) => [e.toDigest, e.forced])).toEqual([[released.agent, false]]);
  });

  it('refuses a digest whose attestation is missing, signed with another key, or failed; --force --reason overrides, recorded', async () => {
    // Another image of the agent repository: the platform manifest, tagged there, attested nowhere in it.
    await source.putTag(AGENT, released.platform, 'unattested', { from: PLATFORM });
    const store = `file:${path.join(root, 'prod-refusals.json')}`;
    const target = ref(released.platform);
    const flags = ['--registry', src(), '--key', signing.pub];

    let r = await promote(store, target, flags);
    expect(r.code).toBe(1);
    expect(errorOf(r).code).toBe('GATE_REFUSED');
    expect(errorOf(r).message).toContain(`no smoke attestation of ${released.platform} in the registry`);

    const attestations = new RegistryAttestationStore(source);
    const statement = (passed: boolean) =>
      smokeStatement({
        report: {
          image: target,
          imageName: 'platform-agent',
          digest: released.platform,
          specDigest: `sha256:${'0'.repeat(64)}`,
          passed,
          skipped: false,
          startedAt: new Date().toISOString(),
          durationMs: 10,
          assertions: [],
          evidence: {
            runId: 'x',
            imageId: null,
            containerId: null,
            volumes: {},
            logTail: [],
            exitCode: null,
            readiness: null,
            listings: {},
          },
        } satisfies SmokeReport,
        repository: `${proxy.addr}/${AGENT}`,
        digest: released.platform,
        summary: passed ? '0/0 assertions passed' : 'failed exited-early: gone',
        templates: [],
        by: 'someone',
        runner: { host: 'h', platform: 'linux/x64', ci: null, slipway: 'test' },
        redactor: new Redactor(),
      });
    await attachStatement(attestations, AGENT, released.platform, statement(true), {
      signer: pemSigner(other.priv),
    });
    r = await promote(store, target, flags);
    expect(errorOf(r).code).toBe('GATE_REFUSED');
    expect(errorOf(r).message).toContain('signed with another key');

    await attachStatement(attestations, AGENT, released.platform, statement(false), {
      signer: pemSigner(signing.priv),
    });
    r = await promote(store, target, flags);
    expect(errorOf(r).code).toBe('GATE_REFUSED');
    expect(errorOf(r).message).toContain('records a failed run (failed exited-early: gone');

    r = await promote(store, target, [...flags, '--force', '--reason', 'hotfix approved']);
    expect(r.code, r.stderr).toBe(0);
    const history = await cli(['--json', 'pins', '--store', store, 'history', 'platform-agent']);
    const entries = (JSON.parse(history.stdout) as { entries: Array<{ forced: boolean; reason: string }> })
      .entries;
    expect(entries.map((e) => [e.forced, e.reason])).toEqual([[true, 'hotfix approved']]);
  });
});

describe('promotion across registries', () => {
  it('copies the image by digest with its attestations into the second registry, and pins the copy', async () => {
    const store = `file:${path.join(root, 'prod-second.json')}`;
    const r = await promote(store, `${proxy.addr}/${AGENT}:staging-latest`, [
      '--registry',
      src(),
      '--to-registry',
      `oci://${second.addr}`,
      '--key',
      signing.pub,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      plan: { to: { image: string; digest: string }; gate: { source: string } };
      copied: { attestations: number; blobs: { copied: number } };
    };
    expect(out.plan.to).toMatchObject({
      image: ref(released.agent, AGENT, second.addr),
      digest: released.agent,
    });
    expect(out.plan.gate.source).toBe('registry');
    expect(out.copied.attestations).toBe(2);
    expect(out.copied.blobs.copied).toBeGreaterThan(0);
    // The second registry serves the same digest, and the attestations verify there.
    const target = await openRegistry(`oci://${second.addr}`, {});
    expect((await target.manifest(AGENT, released.agent))?.digest).toBe(released.agent);
    expect(await target.resolve(AGENT, 'staging-latest')).toBe(released.agent);
    const listed = await cli([
      '--json',
      'attestations',
      ref(released.agent, AGENT, second.addr),
      '--registry',
      `oci://${second.addr}`,
      '--key',
      signing.pub,
    ]);
    expect((JSON.parse(listed.stdout) as Listed).attestations.map((a) => a.signature)).toEqual([
      'verified',
      'verified',
    ]);
    // A second run copies nothing new and changes no pin.
    const again = await promote(store, `${proxy.addr}/${AGENT}:staging-latest`, [
      '--registry',
      src(),
      '--to-registry',
      `oci://${second.addr}`,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(
      JSON.parse(again.stdout) as {
        applied: boolean;
        copied: { attestations: number; blobs: { copied: number } };
      },
    ).toMatchObject({ applied: false, copied: { attestations: 0, blobs: { copied: 0 } } });
  });
});

describe('release --promote --to-registry', () => {
  it('copies each pinned image with its attestations into the other registry before the pin moves, and pins the copy', async () => {
    const store = `file:${path.join(root, 'prod-release.json')}`;
    const r = await cli([
      '--json',
      'release',
      '--registry',
      src(),
      '--env',
      'staging',
      '--sha',
      randomBytes(20).toString('hex'),
      '--pins',
      store,
      '--promote',
      '--to-registry',
      `oci://${second.addr}`,
      '--sign-key',
      signing.key,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      images: Array<{ name: string; digest: string }>;
      pins: Array<{ runtime: string; applied: boolean; pin: { image: string; digest: string } }>;
    };
    const agent = out.images.find((i) => i.name === 'platform-agent')?.digest ?? '';
    expect(out.pins.map((p) => [p.runtime, p.applied, p.pin.image, p.pin.digest])).toEqual([
      ['platform-agent', true, ref(agent, AGENT, second.addr), agent],
    ]);
    const target = await openRegistry(`oci://${second.addr}`, {});
    expect((await target.manifest(AGENT, agent))?.digest).toBe(agent);
    const listed = await cli([
      '--json',
      'attestations',
      ref(agent, AGENT, second.addr),
      '--registry',
      `oci://${second.addr}`,
      '--key',
      signing.pub,
    ]);
    expect(
      (JSON.parse(listed.stdout) as Listed).attestations.map((a) => [a.predicateType, a.signature]).sort(),
    ).toEqual([
      ['https://slipway.dev/attestations/smoke/v1', 'verified'],
      ['https://slsa.dev/provenance/v1', 'verified'],
    ]);
  });

  it('--to-registry without --promote is a usage error', async () => {
    const r = await cli(['release', '--registry', src(), '--to-registry', `oci://${second.addr}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--to-registry copies the images the pins move to: it needs --promote');
  });
});

describe('slipway smoke --ref attaches its verdict too', () => {
  it('a standalone smoke run appends a signed smoke attestation to the digest', async () => {
    const before = JSON.parse(
      (await cli(['--json', 'attestations', ref(released.platform, PLATFORM), '--registry', src()])).stdout,
    ) as Listed;
    const smoked = await cli([
      'smoke',
      'platform',
      '--ref',
      ref(released.platform, PLATFORM),
      '--registry',
      src(),
      '--sign-key',
      other.key,
      '--pins',
      `file:${path.join(root, 'smoke-pins.json')}`,
    ]);
    expect(smoked.code, smoked.stderr).toBe(0);
    const r = await cli([
      '--json',
      'attestations',
      ref(released.platform, PLATFORM),
      '--registry',
      src(),
      '--key',
      other.pub,
    ]);
    const after = JSON.parse(r.stdout) as Listed;
    expect(after.attestations.length).toBe(before.attestations.length + 1);
    // Exactly the new one verifies with the key it was signed with; the release's do not.
    const byOther = after.attestations.filter((a) => a.signature === 'verified');
    expect(byOther.map((a) => [a.predicateType, a.subjectMatches, a.statement.predicate.passed])).toEqual([
      ['https://slipway.dev/attestations/smoke/v1', true, true],
    ]);
  });
});

describe('no credential anywhere', () => {
  it('the registry password is in no attestation payload and no output', async () => {
    const attestations = new RegistryAttestationStore(source);
    for (const [repo, digest] of [
      [AGENT, released.agent],
      [PLATFORM, released.platform],
    ] as const) {
      const list = await attestations.list(repo, digest);
      expect(list.length).toBeGreaterThan(0);
      for (const a of list) {
        const payload = Buffer.from(a.envelope.payload, 'base64').toString('utf8');
        expect(payload).not.toContain(PASSWORD);
        expect(payload).not.toContain(Buffer.from(`robot:${PASSWORD}`).toString('base64'));
        expect(payload).not.toContain('PRIVATE KEY');
      }
    }
    const all = outputs.join('\n');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(signing.priv.split('\n')[1] ?? 'unreachable');
  });
});
