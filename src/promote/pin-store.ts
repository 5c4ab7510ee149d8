/**
 * The pin store port: where runtime image pins, their history and smoke records live.
 * Implementations: `file:PATH` (the embedded default, one JSON document) and `postgres://…`
 * (the control plane's `runtime_image_pins` table). Only the calls Slipway makes are listed.
 */
import type { SmokeVerdictStore } from '../smoke/verdict-store.js';

/** Re-exported for callers that import it from the pin store, where it used to live. */
export type { SmokeRecord } from '../smoke/verdict-store.js';

/** The image a runtime boots. */
export interface PinRecord {
  readonly runtime: string;
  /** Full reference pinned by digest, e.g. `127.0.0.1:5000/molecule-ai/molecule-platform-agent@sha256:…`. */
  readonly image: string;
  readonly digest: string;
  /** The tag the digest was resolved from, if any (informational: the digest is what is pinned). */
  readonly tag: string | null;
  /** ISO-8601 time of the change. */
  readonly updatedAt: string;
  readonly updatedBy: string;
  readonly reason: string | null;
}

/** The change a promotion or rollback makes. */
export interface PinChange {
  readonly runtime: string;
  readonly image: string;
  readonly digest: string;
  readonly tag: string | null;
  readonly by: string;
  readonly reason: string | null;
  /** True when the smoke gate was overridden with --force. */
  readonly forced: boolean;
  readonly kind: 'promote' | 'rollback';
}

/** One recorded pin change. */
export interface PinHistoryEntry {
  /** Monotonic id within the store (used by `rollback --to`). */
  readonly id: number;
  readonly runtime: string;
  readonly fromDigest: string | null;
  readonly toDigest: string;
  readonly image: string;
  readonly tag: string | null;
  readonly at: string;
  readonly by: string;
  readonly reason: string | null;
  readonly forced: boolean;
  readonly kind: 'promote' | 'rollback';
}

/** The pin store port; it also keeps the smoke verdicts promotion is gated on. */
export interface PinStore extends SmokeVerdictStore {
  /** A description without credentials, e.g. `file:pins.json` or `postgres://127.0.0.1:5432/db`. */
  readonly description: string;
  getPin(runtime: string): Promise<PinRecord | null>;
  listPins(): Promise<PinRecord[]>;
  /**
   * Moves the pin to `change` if and only if its current digest is `expectedDigest` (null: no
   * pin yet), recording history in the same transaction. Throws a PIN_CONFLICT SlipwayError
   * otherwise.
   */
  compareAndSet(expectedDigest: string | null, change: PinChange): Promise<PinRecord>;
  /** The runtime's history, newest first. */
  history(runtime: string): Promise<PinHistoryEntry[]>;
  close(): Promise<void>;
}
