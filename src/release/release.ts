import type { KeyObject } from 'node:crypto';
import type { BuiltImage } from '../build/build.js';
import { SlipwayError } from '../core/errors.js';
import type { ImageRef } from '../core/image-ref.js';
import type { LoadedManifest } from '../manifest/load.js';
import { makePlan } from '../plan/plan.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { copyForPromotion } from '../promote/across.js';
import { type PromotionResult, promote } from '../promote/promote.js';
import { moveMovingTags, type PushedImage, type PushResult } from '../publish/push.js';
import { templatesFromReceipt } from '../smoke/expected.js';
import { recordSmoke } from '../smoke/record.js';
import type { SmokeReport } from '../smoke/report.js';
import { runSmoke } from '../smoke/run.js';
import type { StagingReceipt } from '../stage/receipt.js';
import { stageTemplates } from '../stage/stage.js';
import { verifyManifest } from '../verify/verify.js';
import { type AttestPorts, type AttestRequest, attestProvenance, attestSmoke } from './attest-step.js';
import type { Ports, TargetPorts } from './ports.js';
import { publishPlan } from './publish.js';

/** What a release is asked to do. */
export interface ReleaseRequest extends AttestRequest {
  /** Environment name rendered into tags (`staging`). */
  readonly env: string;
  /** The source revision (40 hex). */
  readonly sha: string;
  /** The source repository URL for the OCI `source` label, if known. */
  readonly source?: string | null;
  /** Who runs the release (recorded in smoke records and pin history). */
  readonly by: string;
  /** Move every manifest pin to its image's verified digest at the end. */
  readonly promote?: boolean;
  readonly createRepos?: boolean;
  /** Overwrite immutable tags that name images built from other inputs (logged; see PublishRequest). */
  readonly overwriteImmutable?: boolean;
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly noCache?: boolean;
  /** Running in CI: strict verification, and no smoke skip. */
  readonly ci?: boolean;
  /** The template cache directory (default: the user cache). */
  readonly cacheDir?: string;
  readonly signal?: AbortSignal;
  /**
   * Keys a copied image's smoke attestation must verify with when the pins move across
   * registries (`--to-registry`; the manifest's `publish.attestations.publicKey`). Empty: any.
   */
  readonly attestationKeys?: readonly KeyObject[];
  /** Receives each smoke report as soon as it exists (e.g. to write JUnit even when a later step fails). */
  readonly onSmokeReport?: (report: SmokeReport) => void;
}

/** The ports a release uses: all of them. */
export type ReleasePorts = Pick<
  Ports,
  'engine' | 'registry' | 'pins' | 'verdicts' | 'sources' | 'sink' | 'clock' | 'redactor' | 'timeouts'
> &
  AttestPorts &
  Partial<TargetPorts>;

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
 * The whole pipeline, failing closed: verify -> stage -> plan -> check the registry -> build ->
 * push immutable tags -> smoke every pushed digest (recording each verdict) -> move the moving
 * tags -> promote the pins. A failure at any step leaves every moving tag and every pin where it was.
 */
export async function release(
  loaded: LoadedManifest,
  request: ReleaseRequest,
  ports: ReleasePorts,
): Promise<ReleaseResult> {
  const startedOn = ports.clock();
  await verifyManifest(loaded, {
    strict: request.ci ?? false,
    env: {},
    sink: ports.sink,
    ...(request.buildArgs ? { buildArgs: request.buildArgs } : {}),
  });
  const receipt = await stageTemplates(loaded, {
    sources: ports.sources,
    sink: ports.sink,
    ...(request.cacheDir ? { cacheDir: request.cacheDir } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const plan = await makePlan(loaded, {
    env: request.env,
    sha: request.sha,
    receipt,
    source: request.source ?? null,
    ...(request.buildArgs ? { buildArgs: request.buildArgs } : {}),
  });
  const { built, pushed } = await publishPlan(
    loaded,
    plan,
    {
      holdMovingTags: true,
      createRepos: request.createRepos ?? false,
      overwriteImmutable: request.overwriteImmutable ?? false,
      noCache: request.noCache ?? false,
      ...(request.signal ? { signal: request.signal } : {}),
    },
    ports,
  );
  await attestProvenance(plan, pushed, receipt, startedOn, request, ports);
  const smoke = await smokePushed(loaded, plan, pushed, receipt, request, ports);
  const published = await moveMovingTags(plan, pushed, ports.registry, {
    sink: ports.sink,
    redactor: ports.redactor,
    timeouts: ports.timeouts,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const promotions = request.promote ? await promotePins(plan, published, request, ports) : [];
  return { plan, built, pushed: published, smoke, promotions };
}

/** The pushed image of a planned one, by digest, as a reference in the release's registry. */
function pushedRef(
  planned: PlannedImage,
  pushed: PushResult,
  ports: Pick<Ports, 'registry'>,
): {
  image: PushedImage;
  ref: ImageRef;
} {
  const image = pushed.images.find((i) => i.name === planned.name);
  if (!image) {
    throw new SlipwayError('PLAN_INVALID', `image ${planned.name} was not pushed`, {
      resource: planned.name,
      hint: 'release every image the manifest pins (do not limit the release to other images)',
    });
  }
  return { image, ref: ports.registry.imageName(planned.repository).withDigest(image.digest) };
}

/** Smokes every pushed digest in plan order, records each verdict, and stops at the first failure. */
async function smokePushed(
  loaded: LoadedManifest,
  plan: Plan,
  pushed: PushResult,
  receipt: StagingReceipt,
  request: ReleaseRequest,
  ports: ReleasePorts,
): Promise<SmokeReport[]> {
  const auth = await ports.registry.engineAuth();
  const reports: SmokeReport[] = [];
  for (const planned of plan.images) {
    const { ref } = pushedRef(planned, pushed, ports);
    const report = await runSmoke({
      engine: ports.engine,
      image: ref.toString(),
      imageName: planned.name,
      spec: planned.smoke ?? undefined,
      templates: await templatesFromReceipt(
        loaded,
        receipt,
        planned.templates.map((t) => t.name),
      ),
      pull: { auth },
      ci: request.ci ?? false,
      sink: ports.sink,
      ...(request.signal ? { signal: request.signal } : {}),
    });
    reports.push(report);
    request.onSmokeReport?.(report);
    await recordSmoke(ports.verdicts, report, { by: request.by, repository: ref.name, at: ports.clock() });
    await attestSmoke(planned, report, request, ports);
    if (!report.passed) {
      const failed = report.assertions.filter((a) => !a.passed).length;
      throw new SlipwayError(
        'SMOKE_FAILED',
        `smoke failed for ${planned.name} (${ref}): ${report.failure?.message ?? `${failed} assertion(s) failed`}; moving tags and pins were not changed`,
        {
          resource: ref.toString(),
          hint: `see the report above; reproduce with: slipway smoke ${planned.name} --ref ${ref}`,
        },
      );
    }
  }
  return reports;
}

/** Moves every manifest pin to its image's verified, published digest. */
async function promotePins(
  plan: Plan,
  published: PushResult,
  request: ReleaseRequest,
  ports: ReleasePorts,
): Promise<PromotionResult[]> {
  const moves = plan.pins.map((pin) => {
    const planned = plan.images.find((i) => i.name === pin.image);
    if (!planned) {
      throw new SlipwayError(
        'PLAN_INVALID',
        `runtime ${pin.runtime} is pinned to image ${pin.image}, which this release did not publish`,
        {
          resource: pin.runtime,
          hint: 'release every image the manifest pins (do not limit the release to other images)',
        },
      );
    }
    return { pin, planned, ref: pushedRef(planned, published, ports).ref };
  });
  // Across registries: every pinned image is copied (with its attestations) before any pin moves,
  // so a failed copy leaves every pin where it was.
  const target = ports.target;
  const refs: ImageRef[] = [];
  for (const m of moves) {
    if (!target) {
      refs.push(m.ref);
      continue;
    }
    if (!ports.attestations) {
      throw new SlipwayError(
        'USAGE',
        'a release to another registry needs the attestation store of its own',
        {
          hint: 'open the ports with a registry (openPorts does)',
        },
      );
    }
    const copied = await copyForPromotion(
      m.ref,
      m.planned.repository,
      { registry: ports.registry, attestations: ports.attestations },
      target,
      { sink: ports.sink },
    );
    refs.push(copied.ref);
  }
  const promotions: PromotionResult[] = [];
  for (const [i, m] of moves.entries()) {
    promotions.push(
      await promote(ports.pins, {
        runtime: m.pin.runtime,
        ref: refs[i] as ImageRef,
        registry: target ? target.registry : ports.registry,
        // Across registries the gate reads the copied attestations: the verdict travels with the image.
        ...(target
          ? {
              attestations: {
                store: target.attestations,
                repository: m.planned.repository,
                keys: [...(request.attestationKeys ?? [])],
              },
            }
          : {}),
        repository: m.planned.repository,
        imageName: m.pin.image,
        by: request.by,
        reason: `release ${request.env} ${request.sha}`,
        sink: ports.sink,
      }),
    );
  }
  return promotions;
}
