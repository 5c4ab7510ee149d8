/** Shared helpers for the promote integration tests. */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { SmokeRecord } from '../../src/promote/pin-store.js';
import { pgUrl } from '../support/services.js';

/** A fresh, unique schema name (tests share one database with other engineers' runs). */
export function freshSchemaName(): string {
  return `slipway_test_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

/** A deterministic fake digest for a label. */
export function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

/** The repository name test pins live in. */
export const REPO = '127.0.0.1:5000/molecule-ai/molecule-platform-agent';

/** A smoke record for `digest` in {@link REPO}. */
export function smoke(digest: string, passed = true, repository = REPO): SmokeRecord {
  return {
    repository,
    digest,
    specDigest: digestOf('spec'),
    passed,
    at: new Date().toISOString(),
    by: 'smoke-test',
    summary: passed ? '7/7 assertions passed' : '3/7 assertions passed',
  };
}
