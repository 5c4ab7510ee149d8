import type { KeyObject } from 'node:crypto';
import type { SmokeRecord } from '../smoke/verdict-store.js';
import { keyFingerprint, verifyEnvelope } from './dsse.js';
import { SMOKE_PREDICATE_TYPE, type SmokePredicate } from './statement.js';
import type { StoredAttestation } from './store.js';

/** How an attestation's signature checks out against the key policy. */
export type SignatureStatus =
  /** A signature verifies with a policy key. */
  | 'verified'
  /** Signed, but with none of the policy keys. */
  | 'wrong-key'
  /** No signature at all. */
  | 'unsigned'
  /** Signed; no key was given to check it with. */
  | 'not-checked';

/** An attestation with its signature checked. */
export interface CheckedAttestation extends StoredAttestation {
  readonly signature: SignatureStatus;
  /** True when the statement's subject names the digest it was found for. */
  readonly subjectMatches: boolean;
}

/** Checks every attestation's signature against `keys` and its subject against `digest`. */
export function checkAttestations(
  attestations: readonly StoredAttestation[],
  digest: string,
  keys: readonly KeyObject[],
): CheckedAttestation[] {
  const [algorithm, hex] = digest.split(':');
  return attestations.map((a) => {
    let signature: SignatureStatus;
    if (a.envelope.signatures.length === 0) signature = 'unsigned';
    else if (keys.length === 0) signature = 'not-checked';
    else signature = keys.some((k) => verifyEnvelope(a.envelope, k)) ? 'verified' : 'wrong-key';
    const subjectMatches = a.statement?.subject.some((s) => s.digest[algorithm ?? 'sha256'] === hex) ?? false;
    return { ...a, signature, subjectMatches };
  });
}

/** Why the registry's attestations did not let a digest through. */
export type AttestationGateReason = 'missing' | 'failed' | 'wrong-key' | 'unsigned';

/** The smoke gate's verdict from the registry's attestations. */
export interface AttestationGateResult {
  readonly passed: boolean;
  /** The verdict as a smoke record (null when no acceptable attestation exists). */
  readonly record: SmokeRecord | null;
  readonly message: string;
  readonly reason: AttestationGateReason | null;
}

/**
 * The smoke gate on registry attestations: the newest acceptable smoke attestation of the digest
 * must have passed. With keys, only attestations signed with one of them are acceptable; without
 * keys, any attestation the registry holds is (its signature is not checked).
 */
export function attestationGate(
  digest: string,
  attestations: readonly StoredAttestation[],
  keys: readonly KeyObject[],
): AttestationGateResult {
  const smoke = checkAttestations(attestations, digest, keys).filter(
    (a) => a.predicateType === SMOKE_PREDICATE_TYPE && a.subjectMatches,
  );
  if (smoke.length === 0) {
    return {
      passed: false,
      record: null,
      reason: 'missing',
      message: `no smoke attestation of ${digest} in the registry`,
    };
  }
  const acceptable = keys.length === 0 ? smoke : smoke.filter((a) => a.signature === 'verified');
  if (acceptable.length === 0) {
    const unsigned = smoke.every((a) => a.signature === 'unsigned');
    const fingerprints = keys.map(keyFingerprint).join(', ');
    return {
      passed: false,
      record: null,
      reason: unsigned ? 'unsigned' : 'wrong-key',
      message: unsigned
        ? `the registry's smoke attestation(s) of ${digest} are unsigned, and the key policy requires a signature by ${fingerprints}`
        : `the registry's smoke attestation(s) of ${digest} are signed with another key, not ${fingerprints}`,
    };
  }
  const records = acceptable.map((a) => recordOf(a, digest));
  const newest = records.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))[0] as SmokeRecord;
  const how = keys.length === 0 ? 'signature not checked: no key policy' : 'signature verified';
  if (!newest.passed) {
    return {
      passed: false,
      record: newest,
      reason: 'failed',
      message: `the newest smoke attestation of ${digest} records a failed run (${newest.summary}; ${how})`,
    };
  }
  return {
    passed: true,
    record: newest,
    reason: null,
    message: `smoke attestation in the registry: passed at ${newest.at} (${newest.summary}; ${how})`,
  };
}

function recordOf(a: CheckedAttestation, digest: string): SmokeRecord {
  const p = (a.statement?.predicate ?? {}) as Partial<SmokePredicate>;
  const subject = a.statement?.subject[0]?.name ?? '';
  return {
    repository: subject,
    digest,
    specDigest: typeof p.specDigest === 'string' ? p.specDigest : '',
    passed: p.passed === true,
    at: typeof p.finishedOn === 'string' ? p.finishedOn : '',
    by: typeof p.by === 'string' ? p.by : 'unknown',
    summary: typeof p.summary === 'string' ? p.summary : '',
  };
}
