/**
 * The smoke verdict store port: where smoke runs record their verdict per image digest, and
 * where promotion reads it back. The pin store port extends it, so every pin store keeps them; only
 * the calls Slipway makes are listed.
 */

/** The outcome of one smoke run against one image digest. */
export interface SmokeRecord {
  /** Repository name without tag or digest, e.g. `127.0.0.1:5000/molecule-ai/molecule-platform-agent`. */
  readonly repository: string;
  readonly digest: string;
  /** Digest of the smoke spec that was run (a changed spec needs a new run). */
  readonly specDigest: string;
  readonly passed: boolean;
  readonly at: string;
  readonly by: string;
  /** A short human summary, e.g. "7/7 assertions passed". */
  readonly summary: string;
}

/** The smoke verdict store port. */
export interface SmokeVerdictStore {
  /** Records one smoke run's verdict. */
  recordSmoke(record: SmokeRecord): Promise<void>;
  /** Smoke records for a digest, newest first. */
  smokeRecords(digest: string): Promise<SmokeRecord[]>;
}
