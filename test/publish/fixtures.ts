/** Images, plans and engine helpers shared by the publish integration tests. */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import type { Plan, PlannedImage } from '../../src/plan/types.js';
import type { EngineAuth } from '../../src/publish/registry.js';
import { rootImage } from '../support/services.js';

/** The shared engine client for tests. */
export const docker = new Docker();

/** The image engine port over the same local engine, for the code under test. */
export const engine = dockerEngine();

/** A short random suffix for unique repository names. */
export function uid(): string {
  return randomBytes(4).toString('hex');
}

interface BuildEvent {
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** Builds a Dockerfile (no pull; nothing can be pulled here) and returns the image ID. */
export async function buildImage(
  dockerfile: string,
  tag: string,
  buildargs: Record<string, string> = {},
): Promise<string> {
  const tar = pack();
  tar.entry({ name: 'Dockerfile' }, dockerfile);
  tar.finalize();
  const stream = await docker.buildImage(
    tar as unknown as NodeJS.ReadableStream,
    {
      t: tag,
      pull: false,
      buildargs,
    } as Docker.ImageBuildOptions,
  );
  const events = await new Promise<BuildEvent[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: BuildEvent[]) =>
      err ? reject(err) : resolve(out),
    ),
  );
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new Error(`build of ${tag} failed: ${failed.errorDetail?.message ?? failed.error}`);
  const info = await docker.getImage(tag).inspect();
  return info.Id;
}

/** Two built images: a base FROM the root image and an agent FROM the base's ID. */
export interface BuiltPair {
  readonly base: { id: string; localTag: string };
  readonly agent: { id: string; localTag: string };
}

/** Builds the base and the dependent agent image; `marker` makes their content unique. */
export async function buildPair(marker: string): Promise<BuiltPair> {
  const baseTag = `slipway-test/publish-base:${marker}`;
  const agentTag = `slipway-test/publish-agent:${marker}`;
  const baseId = await buildImage(
    `FROM ${rootImage}\nRUN echo "base ${marker}" > /base-marker\nLABEL dev.slipway.test=publish\n`,
    baseTag,
  );
  const agentId = await buildImage(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a JS one
    'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "agent" > /agent-marker && mkdir -p /configs\n',
    agentTag,
    { BASE_IMAGE: baseId },
  );
  return { base: { id: baseId, localTag: baseTag }, agent: { id: agentId, localTag: agentTag } };
}

/** The built map pushImages takes. */
export function builtOf(pair: BuiltPair): Record<string, { id: string }> {
  return { platform: { id: pair.base.id }, 'platform-agent': { id: pair.agent.id } };
}

/** Removes local test images (by tag), ignoring ones already gone. */
export async function removeImages(...refs: string[]): Promise<void> {
  for (const ref of refs) {
    try {
      await docker.getImage(ref).remove({ force: true });
    } catch {
      // already gone
    }
  }
}

function planned(name: string, repository: string, base: string | null, sha: string): PlannedImage {
  return {
    name,
    repository,
    dockerfile: 'Dockerfile',
    context: '.',
    contextDigest: `sha256:${'0'.repeat(64)}`,
    base,
    buildArgs: {},
    target: null,
    labels: {},
    templates: [],
    immutableTags: [`staging-${sha}`],
    movingTags: ['staging-latest'],
    smoke: null,
  };
}

/** A plan for the two test images in the repositories `<root>/platform` and `<root>/molecule-platform-agent`. */
export function planFor(root: string, sha: string = randomBytes(20).toString('hex')): Plan {
  return {
    version: 1,
    env: 'staging',
    sha,
    source: null,
    images: [
      planned('platform', `${root}/platform`, null, sha),
      planned('platform-agent', `${root}/molecule-platform-agent`, 'platform', sha),
    ],
    pins: [],
  };
}

/** Pulls `name@digest` through the engine and returns the pulled image's ID. */
export async function pullId(ref: string, auth: EngineAuth = {}): Promise<string> {
  const stream = await docker.pull(ref, { authconfig: { ...auth } });
  const events = await new Promise<BuildEvent[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: BuildEvent[]) =>
      err ? reject(err) : resolve(out),
    ),
  );
  const failed = events.find((e) => e.error || e.errorDetail);
  if (failed) throw new Error(`pull of ${ref} failed: ${failed.errorDetail?.message ?? failed.error}`);
  const info = await docker.getImage(ref).inspect();
  return info.Id;
}
