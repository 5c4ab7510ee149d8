import { attachStatement } from '../attest/attest.js';
import {
  type ComparedTemplate,
  provenanceStatement,
  type RunnerDescription,
  smokeStatement,
} from '../attest/statement.js';
import { LABELS } from '../core/labels.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import type { PushResult } from '../publish/push.js';
import { type SmokeReport, summarize } from '../smoke/report.js';
import type { StagingReceipt } from '../stage/receipt.js';
import type { Ports } from './ports.js';

/**
 * The release's attestation steps: provenance for every pushed image, and the smoke verdict of
 * every smoked digest, signed when the ports hold a signer and kept with the image in the
 * registry. Without an attestation store in the ports (a library caller that built its own),
 * nothing is attached.
 */

/** The ports the attestation steps use. */
export type AttestPorts = Pick<Ports, 'registry' | 'sink' | 'clock' | 'redactor'> &
  Partial<Pick<Ports, 'attestations' | 'signer'>>;

/** What the steps record about the run. */
export interface AttestRequest {
  readonly by: string;
  /** Where the run happens (default: an anonymous description). */
  readonly runner?: RunnerDescription;
  /** The SLSA builder id (default: Slipway's). */
  readonly builderId?: string;
}

/** Slipway's SLSA builder id. */
export const SLIPWAY_BUILDER_ID = 'https://slipway.dev/builder/v1';

const anonymousRunner: RunnerDescription = {
  host: 'unknown',
  platform: `${process.platform}/${process.arch}`,
  ci: null,
  slipway: 'unknown',
};

/** Attaches the smoke verdict of a pushed digest (a skip, which is no verdict, attaches nothing). */
export async function attestSmoke(
  planned: Pick<PlannedImage, 'name' | 'repository' | 'templates'>,
  report: SmokeReport,
  request: AttestRequest,
  ports: AttestPorts,
): Promise<void> {
  if (!ports.attestations || report.digest === null || report.skipped) return;
  const templates: ComparedTemplate[] = planned.templates.map((t) => ({
    name: t.name,
    ref: t.ref,
    digest: t.digest,
  }));
  const statement = smokeStatement({
    report,
    repository: ports.registry.imageName(planned.repository).name,
    digest: report.digest,
    summary: summarize(report),
    templates,
    by: request.by,
    runner: request.runner ?? anonymousRunner,
    redactor: ports.redactor,
  });
  await attachStatement(ports.attestations, planned.repository, report.digest, statement, {
    signer: ports.signer ?? undefined,
    sink: ports.sink,
    subject: planned.name,
  });
}

/** Attaches SLSA provenance to every pushed image of the plan. */
export async function attestProvenance(
  plan: Plan,
  pushed: PushResult,
  receipt: StagingReceipt,
  startedOn: Date,
  request: AttestRequest,
  ports: AttestPorts,
): Promise<void> {
  const attestations = ports.attestations;
  if (!attestations) return;
  for (const planned of plan.images) {
    const image = pushed.images.find((i) => i.name === planned.name);
    if (!image) continue;
    const details = await ports.registry.imageDetails(planned.repository, image.digest);
    const labels = details?.labels ?? {};
    const basePushed = planned.base ? pushed.images.find((i) => i.name === planned.base) : undefined;
    const base = basePushed
      ? { name: basePushed.repository, digest: basePushed.digest }
      : labels[LABELS.baseDigest]
        ? { name: labels[LABELS.baseName] ?? 'unknown', digest: labels[LABELS.baseDigest] as string }
        : null;
    const statement = provenanceStatement({
      repository: ports.registry.imageName(planned.repository).name,
      digest: image.digest,
      image: planned.name,
      builder: { id: request.builderId ?? SLIPWAY_BUILDER_ID, version: request.runner?.slipway ?? 'unknown' },
      source: { repository: plan.source, revision: plan.sha },
      dockerfile: { path: planned.dockerfile, digest: labels[LABELS.dockerfileDigest] ?? null },
      context: { path: planned.context, digest: planned.contextDigest },
      target: planned.target,
      buildArgs: planned.buildArgs,
      templates: planned.templates.map((t) => ({
        name: t.name,
        source: receipt.templates[t.name]?.source ?? null,
        ref: t.ref,
        digest: t.digest,
      })),
      base,
      env: plan.env,
      tags: image.tags,
      invocationId: `${plan.env}-${plan.sha}-${startedOn.getTime()}`,
      startedOn: startedOn.toISOString(),
      finishedOn: ports.clock().toISOString(),
      runner: request.runner ?? anonymousRunner,
      redactor: ports.redactor,
    });
    await attachStatement(attestations, planned.repository, image.digest, statement, {
      signer: ports.signer ?? undefined,
      sink: ports.sink,
      subject: planned.name,
    });
  }
}
