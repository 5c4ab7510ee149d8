import type { KeyObject } from 'node:crypto';
import type { AttestationStore } from '../attest/store.js';
import { attestationGate } from '../attest/verify.js';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import type { ImageRef } from '../core/image-ref.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { type PromotionResult, promote, type SmokeGateResult, smokeGate } from '../promote/promote.js';
import { moveMovingTags, type PushResult } from '../publish/push.js';
import type { SmokeVerdictStore } from '../smoke/verdict-store.js';
import type { Ports } from './ports.js';

/**
 * Where the finishing step learns that a pushed digest was verified. The pin store's smoke
 * records are the default ({@link smokeRecordVerdicts}); another source (registry attestations)
 * plugs in here without changing {@link finishRelease}.
 */
export interface VerdictSource {
  /** Named in errors, e.g. `smoke records in file:pins.json`. */
  readonly description: string;
  /** The verdict on one pushed image, addressed by `registry/repo@digest`. */
  verdict(image: PlannedImage, ref: ImageRef): Promise<SmokeGateResult>;
}

/** The verdicts smoke runs recorded in a verdict store (the pin store): the same gate promotion applies. */
export function smokeRecordVerdicts(store: SmokeVerdictStore, description = 'the pin store'): VerdictSource {
  return {
    description: `smoke records in ${description}`,
    async verdict(_image, ref) {
      return smokeGate(ref, ref.digest ? await store.smokeRecords(ref.digest) : []);
    },
  };
}

/**
 * The pin store's smoke records, else a passing smoke attestation in the registry (with `keys`:
 * one that verifies with them): a verdict recorded by the runner that smoked the image counts
 * here even when that runner wrote to another pin store.
 */
export function recordsOrAttestations(
  store: SmokeVerdictStore,
  attestations: AttestationStore,
  keys: readonly KeyObject[],
  description = 'the pin store',
): VerdictSource {
  const records = smokeRecordVerdicts(store, description);
  return {
    description: `${records.description} or smoke attestations in the registry`,
    async verdict(image, ref) {
      const local = await records.verdict(image, ref);
      if (local.passed || !ref.digest) return local;
      const gate = attestationGate(ref.digest, await attestations.list(image.repository, ref.digest), keys);
      return gate.passed
        ? { passed: true, record: gate.record, message: gate.message, source: 'registry' }
        : { ...local, message: `${local.message}; ${gate.message}` };
    },
  };
}

/** What the finishing step is asked to do. */
export interface FinishRequest {
  /** Who finishes the release (pin history). */
  readonly by: string;
  /** Move every pin of the plan to its image's verified digest. */
  readonly promote?: boolean;
  /** Where verdicts come from (default: the smoke records of `ports.verdicts`). */
  readonly verdicts?: VerdictSource;
  /**
   * Registry attestations the promotions may rest on (the verdict of a runner with another pin
   * store); the same policy as `pins promote`.
   */
  readonly attestations?: { readonly store: AttestationStore; readonly keys: readonly KeyObject[] };
  readonly signal?: AbortSignal;
}

/** The ports the finishing step uses. */
export type FinishPorts = Pick<Ports, 'registry' | 'pins' | 'verdicts' | 'sink' | 'redactor'>;

/** What the finishing step found and did. */
export interface FinishResult {
  readonly plan: Plan;
  /** Every image with its digest and all its tags, moving ones included. */
  readonly pushed: PushResult;
  /** The verdict each image's digest rests on, by image name. */
  readonly verdicts: Readonly<Record<string, SmokeGateResult>>;
  readonly promotions: PromotionResult[];
}

/**
 * The last step of a plan published piecewise (one image per runner): reads from the registry
 * that every image of the plan has all its immutable tags at one digest, and from the verdict
 * source that each digest passed smoke; only then moves the moving tags (all or nothing) and,
 * with `promote`, the pins. Anything missing refuses the whole step, listing every gap, with no
 * tag or pin changed.
 */
export async function finishRelease(
  plan: Plan,
  request: FinishRequest,
  ports: FinishPorts,
): Promise<FinishResult> {
  const source = request.verdicts ?? smokeRecordVerdicts(ports.verdicts, ports.pins.description);
  const missing: ErrorDetail[] = [];
  const images: PushResult['images'] = [];
  const verdicts: Record<string, SmokeGateResult> = {};
  ports.sink({
    kind: 'step-start',
    stage: 'push',
    subject: 'finish',
    message: `checking ${plan.images.length} image(s) of ${plan.env} ${plan.sha}`,
  });
  for (const planned of plan.images) {
    const name = ports.registry.imageName(planned.repository);
    const digests = new Map<string, string | null>();
    for (const tag of planned.immutableTags) {
      digests.set(tag, await ports.registry.resolve(planned.repository, tag));
    }
    const absent = [...digests].filter(([, d]) => d === null).map(([t]) => t);
    const found = [...new Set([...digests.values()].filter((d): d is string => d !== null))];
    if (absent.length > 0) {
      missing.push({
        at: planned.name,
        message: `not pushed: ${absent.map((t) => name.withTag(t).toString()).join(', ')} missing`,
        hint: `slipway push ${planned.name} --plan FILE`,
      });
      continue;
    }
    if (found.length !== 1) {
      missing.push({
        at: planned.name,
        message: `its immutable tags name different digests (${found.join(', ')})`,
      });
      continue;
    }
    const digest = found[0] as string;
    const ref = name.withDigest(digest);
    const verdict = await source.verdict(planned, ref);
    verdicts[planned.name] = verdict;
    if (!verdict.passed) {
      missing.push({
        at: planned.name,
        message: `not verified: ${verdict.message}`,
        hint: `slipway smoke ${planned.name} --plan FILE`,
      });
      continue;
    }
    images.push({
      name: planned.name,
      repository: name.name,
      digest,
      tags: [...planned.immutableTags],
      pushed: [],
      skipped: [],
    });
  }
  if (missing.length > 0) {
    throw new SlipwayError(
      'GATE_REFUSED',
      `the release of ${plan.env} ${plan.sha} is not complete; moving tags and pins were not changed:\n${missing
        .map((d) => `  ${d.at}: ${d.message}`)
        .join('\n')}`,
      {
        resource: ports.registry.url,
        details: missing,
        hint: `push and smoke every image of the plan (verdicts from ${source.description}), then finish again`,
      },
    );
  }
  const pushed = await moveMovingTags(plan, { registry: ports.registry.url, images }, ports.registry, {
    sink: ports.sink,
    redactor: ports.redactor,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  const promotions: PromotionResult[] = [];
  if (request.promote) {
    for (const pin of plan.pins) {
      const image = pushed.images.find((i) => i.name === pin.image);
      const planned = plan.images.find((i) => i.name === pin.image);
      if (!image || !planned) {
        throw new SlipwayError(
          'PLAN_INVALID',
          `runtime ${pin.runtime} is pinned to image ${pin.image}, which the plan does not publish`,
          { resource: pin.runtime, hint: 'make the plan for every image the manifest pins' },
        );
      }
      promotions.push(
        await promote(ports.pins, {
          runtime: pin.runtime,
          ref: ports.registry.imageName(planned.repository).withDigest(image.digest),
          registry: ports.registry,
          repository: planned.repository,
          imageName: pin.image,
          by: request.by,
          reason: `release ${plan.env} ${plan.sha}`,
          sink: ports.sink,
          ...(request.attestations
            ? {
                attestations: {
                  store: request.attestations.store,
                  repository: planned.repository,
                  keys: request.attestations.keys,
                },
              }
            : {}),
        }),
      );
    }
  }
  return { plan, pushed, verdicts, promotions };
}
