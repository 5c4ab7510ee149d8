import { SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import type { PinStore, SmokeRecord } from '../promote/pin-store.js';
import { type SmokeReport, summarize } from './report.js';

/** Who recorded a smoke run, and for which repository. */
export interface RecordSmokeOptions {
  /** Who ran it (CI actor or user). */
  readonly by: string;
  /** Repository name without tag or digest; default: the name of the report's image reference. */
  readonly repository?: string;
  /** The record's time; default now. */
  readonly at?: Date;
}

/**
 * Writes the run's verdict to the pin store, so promotion can require a passing record for the
 * digest. Returns null (writing nothing) when the report has no registry digest (a local
 * image) or was a skip, which is no verdict.
 */
export async function recordSmoke(
  store: PinStore,
  report: SmokeReport,
  options: RecordSmokeOptions,
): Promise<SmokeRecord | null> {
  if (report.digest === null || report.skipped) return null;
  let repository = options.repository;
  if (repository === undefined) {
    try {
      repository = ImageRef.parse(report.image).name;
    } catch {
      throw new SlipwayError(
        'USAGE',
        `cannot tell the repository of ${report.image} to record its smoke run`,
        {
          resource: report.image,
          hint: 'pass the repository explicitly',
        },
      );
    }
  }
  const record: SmokeRecord = {
    repository,
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
