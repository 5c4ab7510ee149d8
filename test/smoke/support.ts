/**
 * Fixture images for the smoke tests: built from test/fixtures/smoke/Dockerfile (FROM the root
 * image, never pulled), one per identity-fallback variant, and removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { expect } from 'vitest';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { type SmokeSpec, SmokeSpecSchema } from '../../src/manifest/schema.js';
import { SMOKE_LABEL } from '../../src/smoke/run.js';

/** The fixture build context. */
export const fixtureDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'smoke');
/** The fixture template (what the good image bakes and fills /configs with). */
export const templateDir = path.join(fixtureDir, 'template');

/** A short random suffix for names nobody else uses. */
export function uniq(): string {
  return randomBytes(4).toString('hex');
}

/** The engine client the tests use to set up and inspect (the local socket). */
export const docker = new Dockerode();

/** The image engine port over the same local engine, for the code under test. */
export const engine = dockerEngine();

async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/** Builds the fixture Dockerfile with the given variant; returns the tag. Scans every build event for errors. */
export async function buildFixture(
  tag: string,
  args: { FALLBACK?: string; AGENT?: string } = {},
  labels: Record<string, string> = {},
): Promise<string> {
  const stream = await docker.buildImage(
    { context: fixtureDir, src: await filesUnder(fixtureDir) },
    { t: tag, buildargs: args, labels, rm: true, forcerm: true },
  );
  const events = await followProgress(stream);
  const bad = events.find((e) => e.error || e.errorDetail);
  if (bad) throw new Error(`fixture build ${tag} failed: ${bad.errorDetail?.message ?? bad.error}`);
  return tag;
}

/** One event of the engine's build, push or pull progress stream. */
export interface ProgressEvent {
  readonly error?: string;
  readonly errorDetail?: { message?: string };
  readonly aux?: { Digest?: string };
}

/** Waits for a progress stream to end and returns every event (callers scan them for errors). */
export function followProgress(stream: NodeJS.ReadableStream): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: ProgressEvent[]) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

/** Removes images by tag, ignoring ones already gone. */
export async function removeImages(tags: readonly string[]): Promise<void> {
  for (const t of tags) {
    await docker
      .getImage(t)
      .remove({ force: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  }
}

/** Asserts that nothing labelled by the run (by run id, or by the unique image name) was left behind. */
export async function expectNothingLeft(selector: { runId?: string; imageName?: string }): Promise<void> {
  const label = selector.runId
    ? `${SMOKE_LABEL}=${selector.runId}`
    : `dev.slipway.image=${selector.imageName}`;
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  const volumes = (await docker.listVolumes({ filters: { label: [label] } })).Volumes ?? [];
  expect({ containers: containers.map((c) => c.Names), volumes: volumes.map((v) => v.Name) }).toEqual({
    containers: [],
    volumes: [],
  });
}

/** The reference platform-agent smoke spec (as in the root manifest.json), parsed with defaults. */
export const referenceSpecJson = {
  boot: { emptyVolumes: ['/configs'] },
  ready: { log: 'platform-agent ready' },
  timeoutSeconds: 60,
  assertions: [
    {
      kind: 'path',
      name: 'config.yaml is the real identity',
      path: '/configs/config.yaml',
      type: 'file',
      minSize: 219,
    },
    { kind: 'path', name: 'prompts are present', path: '/configs/prompts', type: 'non-empty-directory' },
    { kind: 'path', name: 'mcp_servers directory', path: '/configs/mcp_servers', type: 'directory' },
    { kind: 'path', name: 'MCP server is installed', path: '/opt/molecule-mcp-server', type: 'any' },
    {
      kind: 'template',
      name: '/configs matches template platform-agent',
      path: '/configs',
      template: 'platform-agent',
    },
    {
      kind: 'absent',
      name: 'no credentials under /configs',
      under: '/configs',
      patterns: ['.git', '.env', '.env.*', '*.pem', '*.key', 'id_rsa*', 'id_ed25519*', '*.p12'],
    },
  ],
};

/** The reference spec parsed (defaults applied), optionally changed. */
export function referenceSpec(change: (raw: typeof referenceSpecJson) => unknown = (r) => r): SmokeSpec {
  return SmokeSpecSchema.parse(change(structuredClone(referenceSpecJson)));
}

/** `[name, kind, passed]` for every assertion of the reference spec, all passing unless listed as failing. */
export function referenceResults(
  failing: readonly string[] = [],
): Array<{ name: string; kind: string; passed: boolean }> {
  return referenceSpecJson.assertions.map((a) => ({
    name: a.name,
    kind: a.kind,
    passed: !failing.includes(a.name),
  }));
}
