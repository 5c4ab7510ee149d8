import { type BuiltImage, buildImages } from '../build/build.js';
import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { ImageRef } from '../core/image-ref.js';
import { Redactor } from '../core/redact.js';
import { dockerConnectionFromEnv } from '../engine/docker-connection.js';
import { dockerEngine } from '../engine/docker-engine.js';
import type { ImageEngine } from '../engine/image-engine.js';
import type { LoadedManifest } from '../manifest/load.js';
import { makePlan } from '../plan/plan.js';
import type { Plan } from '../plan/types.js';
import { openPinStore } from '../promote/open.js';
import type { PinStore } from '../promote/pin-store.js';
import { type PromotionResult, promote } from '../promote/promote.js';
import { openRegistry } from '../publish/open.js';
import { moveMovingTags, type PushResult, pushImages } from '../publish/push.js';
import type { Registry } from '../publish/registry.js';
import { templatesFromReceipt } from '../smoke/expected.js';
import { recordSmoke } from '../smoke/record.js';
import type { SmokeReport } from '../smoke/report.js';
import { runSmoke } from '../smoke/run.js';
import { stageTemplates } from '../stage/stage.js';
import { verifyManifest } from '../verify/verify.js';

/** Options of {@link release}. */
export interface ReleaseOptions {
  /** Environment name rendered into tags (`staging`). */
  readonly env: string;
  /** The source revision (40 hex). */
  readonly sha: string;
  /** `oci://…` or `ecr://…`. */
  readonly registry: string;
  /** Where smoke records and runtime pins live (`file:…` or `postgres://…`). */
  readonly pinStore: string;
  /** Move every manifest pin to its image's verified digest at the end. */
  readonly promote?: boolean;
  readonly createRepos?: boolean;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly noCache?: boolean;
  /** Who runs the release (recorded in smoke records and pin history). */
  readonly by: string;
  /** Running in CI: strict verification, and no smoke skip. */
  readonly ci?: boolean;
  /** Environment for tokens and AWS configuration (never read from process.env inside). */
  readonly processEnv?: NodeJS.ProcessEnv;
  readonly source?: string | null;
  readonly sink?: EventSink;
  readonly signal?: AbortSignal;
  /** Receives each smoke report as soon as it exists (e.g. to write JUnit even when a later step fails). */
  readonly onSmokeReport?: (report: SmokeReport) => void;
}

/** What a release did, stage by stage. */
export interface ReleaseResult {
  readonly plan: Plan;
  readonly built: Record<string, BuiltImage>;
  /** Every image with its digest and all its tags, moving ones included. */
  readonly pushed: PushResult;
  readonly smoke: SmokeReport[];
  readonly promotions: PromotionResult[];
}

/**
 * The whole pipeline, failing closed: verify -> stage -> plan -> build -> push immutable tags ->
 * smoke every pushed digest (recording each verdict) -> move the moving tags -> promote the pins.
 * A failure at any step leaves every moving tag and every pin where it was.
 */
export async function release(loaded: LoadedManifest, options: ReleaseOptions): Promise<ReleaseResult> {
  const sink = options.sink ?? silentSink;
  const env = options.processEnv ?? {};
  const redactor = new Redactor().add(env.GITHUB_TOKEN, env.GITEA_TOKEN, env.SLIPWAY_REGISTRY_PASSWORD);
  const common = { sink, ...(options.signal ? { signal: options.signal } : {}) };
  // Until the composition root injects it: the engine the environment names (never process.env).
  const engine: ImageEngine = dockerEngine(dockerConnectionFromEnv(env));

  await verifyManifest(loaded, {
    strict: options.ci ?? false,
    env,
    sink,
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
  });
  const receipt = await stageTemplates(loaded, { env, ...common });
  const plan = await makePlan(loaded, {
    env: options.env,
    sha: options.sha,
    receipt,
    source: options.source ?? null,
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
  });
  const built = await buildImages(loaded, plan, { engine, noCache: options.noCache ?? false, ...common });

  const registry: Registry = await openRegistry(options.registry, { env, redactor });
  const pushed = await pushImages(plan, built, registry, {
    engine,
    createRepos: options.createRepos ?? false,
    repositorySettings: loaded.manifest.publish.ecr,
    holdMovingTags: true,
    redactor,
    ...common,
  });

  const store: PinStore = await openPinStore(options.pinStore, { cwd: loaded.dir });
  try {
    const smoke = await smokeAll(loaded, plan, pushed, registry, store, receipt, engine, options, sink);
    const published = await moveMovingTags(plan, pushed, registry, { redactor, ...common });
    const promotions: PromotionResult[] = [];
    if (options.promote) {
      for (const pin of plan.pins) {
        const image = published.images.find((i) => i.name === pin.image);
        const planned = plan.images.find((i) => i.name === pin.image);
        if (!image || !planned) {
          throw new SlipwayError(
            'PLAN_INVALID',
            `runtime ${pin.runtime} is pinned to image ${pin.image}, which this release did not publish`,
            {
              resource: pin.runtime,
              hint: 'release every image the manifest pins (do not limit the release to other images)',
            },
          );
        }
        promotions.push(
          await promote(store, {
            runtime: pin.runtime,
            ref: ImageRef.parse(image.repository).withDigest(image.digest),
            registry,
            repository: planned.repository,
            imageName: pin.image,
            by: options.by,
            reason: `release ${options.env} ${options.sha}`,
            sink,
          }),
        );
      }
    }
    return { plan, built, pushed: published, smoke, promotions };
  } finally {
    await store.close();
  }
}

async function smokeAll(
  loaded: LoadedManifest,
  plan: Plan,
  pushed: PushResult,
  registry: Registry,
  store: PinStore,
  receipt: Awaited<ReturnType<typeof stageTemplates>>,
  engine: ImageEngine,
  options: ReleaseOptions,
  sink: EventSink,
): Promise<SmokeReport[]> {
  const auth = await registry.engineAuth();
  const reports: SmokeReport[] = [];
  for (const planned of plan.images) {
    const image = pushed.images.find((i) => i.name === planned.name);
    if (!image)
      throw new SlipwayError('PLAN_INVALID', `image ${planned.name} was not pushed`, {
        resource: planned.name,
      });
    const spec = planned.smoke ?? undefined;
    const templates = await templatesFromReceipt(
      loaded,
      receipt,
      planned.templates.map((t) => t.name),
    );
    const report = await runSmoke({
      engine,
      image: `${image.repository}@${image.digest}`,
      imageName: planned.name,
      spec,
      templates,
      pull: { auth },
      ci: options.ci ?? false,
      sink,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    reports.push(report);
    options.onSmokeReport?.(report);
    await recordSmoke(store, report, { by: options.by, repository: image.repository });
    if (!report.passed) {
      throw new SlipwayError(
        'SMOKE_FAILED',
        `smoke failed for ${planned.name} (${image.repository}@${image.digest}): ${report.failure?.message ?? `${report.assertions.filter((a) => !a.passed).length} assertion(s) failed`}; moving tags and pins were not changed`,
        {
          resource: `${image.repository}@${image.digest}`,
          hint: `see the report above; reproduce with: slipway smoke ${planned.name} --ref ${image.repository}@${image.digest}`,
        },
      );
    }
  }
  return reports;
}
