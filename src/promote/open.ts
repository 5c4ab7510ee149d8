import { SlipwayError } from '../core/errors.js';
import { FilePinStore, type FilePinStoreOptions } from './file-store.js';
import type { PinStore } from './pin-store.js';
import {
  describePostgresUrl,
  migratePostgresPinStore,
  openPostgresPinStore,
  type PostgresPinStoreOptions,
} from './postgres-store.js';

/** Options for {@link openPinStore} and {@link migratePinStore}; each store uses the ones that apply. */
export interface PinStoreOptions extends PostgresPinStoreOptions, FilePinStoreOptions {}

/** What {@link migratePinStore} did. */
export interface MigrationResult {
  /** The store, without credentials. */
  readonly store: string;
  /** Versions applied by this call (empty when already up to date). */
  readonly applied: number[];
  /** The schema version the store is at now. */
  readonly version: number;
}

function kindOf(url: string): 'postgres' | 'file' {
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  if (url.startsWith('file:')) return 'file';
  throw new SlipwayError('USAGE', `unknown pin store URL "${describePostgresUrl(url)}"`, {
    hint: 'use file:PATH (the default, e.g. file:.slipway/pins.json) or postgres://user@host:5432/db',
  });
}

/**
 * Takes a `?schema=NAME` query parameter off a PostgreSQL URL (so a CLI user can choose the
 * schema in SLIPWAY_PIN_STORE); an explicit `schema` option wins.
 */
export function withSchema(url: string, options: PinStoreOptions): [string, PinStoreOptions] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url, options];
  }
  const schema = parsed.searchParams.get('schema');
  if (schema === null) return [url, options];
  parsed.searchParams.delete('schema');
  return [parsed.toString(), { ...options, schema: options.schema ?? schema }];
}

/** Opens the pin store a URL names: `file:PATH` or `postgres://…` / `postgresql://…`. */
export async function openPinStore(url: string, options: PinStoreOptions = {}): Promise<PinStore> {
  if (kindOf(url) === 'postgres') return openPostgresPinStore(...withSchema(url, options));
  return new FilePinStore(url, options);
}

/** Brings the store's schema up to date (idempotent; safe to run concurrently). A file store is only validated (its format version lives in the document). */
export async function migratePinStore(url: string, options: PinStoreOptions = {}): Promise<MigrationResult> {
  if (kindOf(url) === 'postgres') {
    const [pgUrl, pgOptions] = withSchema(url, options);
    const r = await migratePostgresPinStore(pgUrl, pgOptions);
    return { store: describePostgresUrl(pgUrl, pgOptions.schema), ...r };
  }
  const store = new FilePinStore(url, options);
  // Reading validates an existing file; the format is versioned inside the document itself.
  await store.read();
  return { store: store.description, applied: [], version: 1 };
}
