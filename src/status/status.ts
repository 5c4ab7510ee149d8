import { SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { LABELS } from '../core/labels.js';
import { imageOrder } from '../manifest/graph.js';
import type { LoadedManifest } from '../manifest/load.js';
import { renderTags } from '../plan/plan.js';
import type { PinStore, SmokeRecord } from '../promote/pin-store.js';
import { smokeGate } from '../promote/promote.js';
import type { Registry } from '../publish/registry.js';
import { readReceipt } from '../stage/stage.js';
import { currentInputs } from './current.js';
import { evaluateStatus } from './flags.js';
import type { ImageFacts, LatestImage, PinStatus, SmokeVerdict, StatusReport } from './types.js';

/** The registry calls status makes. */
export type StatusRegistry = Pick<
  Registry,
  'url' | 'imageName' | 'repositoryOf' | 'resolve' | 'describeRepository' | 'imageDetails'
>;

/** The pin store calls status makes (pins, their history for --force, and smoke verdicts). */
export type StatusPinSource = Pick<PinStore, 'description' | 'getPin' | 'history' | 'smokeRecords'>;

/** The ports {@link status} reads through. */
export interface StatusPorts {
  readonly registry: StatusRegistry;
  readonly pins: StatusPinSource;
}

/** What to report on. */
export interface StatusRequest {
  /** Environment name rendered into the moving tag (`staging` -> `staging-latest`). */
  readonly env: string;
  /** STALE when the moving tag's image was built longer ago than this (seconds). */
  readonly maxAgeSeconds?: number | null;
  /** Build-arg overrides the release uses (they are part of the compared inputs). */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Report only these images and their bases (default: every image). */
  readonly images?: readonly string[];
  /** The clock (tests). */
  readonly now?: Date;
}

const SHA_RE = /^[0-9a-f]{40}$/;
// Any valid sha renders the moving tags; they do not contain {sha} in a sane manifest.
const ANY_SHA = '0'.repeat(40);

/**
 * Is what is pinned the newest thing built from the manifest, pushed, and verified? Reads the
 * registry, the pin store and the checkout (never builds), then raises the flags with the pure
 * {@link evaluateStatus}.
 */
export async function status(
  loaded: LoadedManifest,
  request: StatusRequest,
  ports: StatusPorts,
): Promise<StatusReport> {
  const { manifest } = loaded;
  const tag = renderTags(manifest.tags, { env: request.env, sha: ANY_SHA }).moving[0];
  if (tag === undefined) {
    throw new SlipwayError('USAGE', 'the manifest has no moving tag to compare against', {
      resource: 'tags.moving',
      hint: 'status compares pins with the moving tag (e.g. "{env}-latest"); add one to tags.moving',
    });
  }
  const names = imageOrder(manifest, request.images);
  const receipt = await readReceipt(loaded);
  const current = await currentInputs(loaded, receipt, names, request.buildArgs);
  const facts: ImageFacts[] = [];
  for (const name of names) {
    const image = manifest.images[name];
    const inputs = current[name];
    if (!image || !inputs) continue;
    const fullName = ports.registry.imageName(image.repository).name;
    const info = await ports.registry.describeRepository(image.repository);
    const latest = info.exists
      ? await latestImage(ports, image.repository, fullName, tag, request.env, loaded)
      : null;
    const runtimes = Object.keys(manifest.pins)
      .filter((r) => manifest.pins[r]?.image === name)
      .sort();
    const pins: PinStatus[] = [];
    for (const runtime of runtimes) pins.push(await pinStatus(ports, runtime, image.repository, latest));
    facts.push({
      name,
      repository: { name: fullName, ...info },
      latest,
      current: inputs,
      pins,
    });
  }
  return evaluateStatus(facts, {
    registry: ports.registry.url,
    env: request.env,
    tag,
    pinStore: ports.pins.description,
    maxAgeSeconds: request.maxAgeSeconds ?? null,
    now: request.now ?? new Date(),
  });
}

function verdict(name: string, digest: string, records: readonly SmokeRecord[]): SmokeVerdict {
  const gate = smokeGate(ImageRef.parse(`${name}@${digest}`), records);
  return { passed: gate.passed, at: gate.record?.at ?? null, message: gate.message };
}

async function latestImage(
  ports: StatusPorts,
  repository: string,
  fullName: string,
  tag: string,
  env: string,
  loaded: LoadedManifest,
): Promise<LatestImage | null> {
  const details = await ports.registry.imageDetails(repository, tag);
  if (!details) return null;
  const rev = details.labels[LABELS.revision];
  const revision = rev !== undefined && SHA_RE.test(rev) ? rev : null;
  const releaseTag =
    revision === null
      ? null
      : (renderTags(loaded.manifest.tags, { env, sha: revision }).immutable[0] ?? null);
  const releaseDigest = releaseTag === null ? null : await ports.registry.resolve(repository, releaseTag);
  return {
    tag,
    digest: details.digest,
    configDigest: details.configDigest,
    created: details.labels[LABELS.created] ?? details.created,
    pushedAt: details.pushedAt,
    revision,
    releaseTag,
    releaseDigest,
    labels: details.labels,
    smoke: verdict(fullName, details.digest, await ports.pins.smokeRecords(details.digest)),
  };
}

async function pinStatus(
  ports: StatusPorts,
  runtime: string,
  repository: string,
  latest: LatestImage | null,
): Promise<PinStatus> {
  const pin = await ports.pins.getPin(runtime);
  // A control-plane row may pin a tag without a digest: nothing to compare, treat as no pin.
  if (!pin?.digest) return { runtime, pinned: null, resolves: null, smoke: null, equalsLatest: null };
  let ref: ImageRef | null = null;
  try {
    ref = ImageRef.parse(pin.image);
  } catch {
    ref = null;
  }
  const name = ref?.name ?? ports.registry.imageName(repository).name;
  const pinnedRepo = ref === null ? repository : ports.registry.repositoryOf(ref);
  let resolves: boolean | null = null;
  if (latest !== null && pin.digest === latest.digest && pinnedRepo === repository) resolves = true;
  else if (pinnedRepo !== null)
    resolves = (await ports.registry.imageDetails(pinnedRepo, pin.digest)) !== null;
  const history = await ports.pins.history(runtime);
  const change = history.find((h) => h.toDigest === pin.digest);
  return {
    runtime,
    pinned: {
      image: pin.image,
      digest: pin.digest,
      updatedAt: pin.updatedAt,
      updatedBy: pin.updatedBy,
      forced: change?.forced ?? false,
    },
    resolves,
    smoke: verdict(name, pin.digest, await ports.pins.smokeRecords(pin.digest)),
    equalsLatest: latest === null ? null : pin.digest === latest.digest,
  };
}
