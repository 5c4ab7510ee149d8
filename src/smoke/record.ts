import { SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { type SmokeReport, summarize } from './report.js';
import type { SmokeRecord, SmokeVerdictStore } from './verdict-store.js';

/** Who recorded a smoke run, and for which repository. */
export interface RecordSmokeOptions {
  /** Who ran it (CI actor or user). */
  readonly by: string;
  /**
   * The repository the smoked image was pulled from: its reference (tag and digest are ignored)
   * or its name. Default: parsed from the report's image string.
   */
  readonly repository?: ImageRef | string;
  /** The record's time; default now. */
  readonly at?: Date;
}

/**
 * Writes the run's verdict to the smoke verdict store, so promotion can require a passing
 * record for the digest. Returns null (writing nothing) when the report has no registry digest
 * (a local image) or was a skip, which is no verdict.
 */
export async function recordSmoke(
  store: SmokeVerdictStore,
  report: SmokeReport,
  options: RecordSmokeOptions,
): Promise<SmokeRecord | null> {
  if (report.digest === null || report.skipped) return null;
  const record: SmokeRecord = {
    repository: repositoryOf(report, options.repository),
    digest: report.digest,
    specDigest: report.specDigest,
    passed: report.passed,
    at: (options.at ?? new Date()).toISOString(),
    by: options.by,
    summary: summarize(report).slice(0, 500),
  };
  await store.recordSmoke(record);
  return record;
}

/** The repository name to record: the caller's value, else the one in the report's image reference. */
function repositoryOf(report: SmokeReport, given: ImageRef | string | undefined): string {
  if (given instanceof ImageRef) return given.name;
  if (given !== undefined) return given;
  try {
    return ImageRef.parse(report.image).name;
  } catch {
    throw new SlipwayError('USAGE', `cannot tell the repository of ${report.image} to record its smoke run`, {
      resource: report.image,
      hint: 'pass the repository explicitly',
    });
  }
}
