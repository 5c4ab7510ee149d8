import type { KeyObject } from 'node:crypto';
import { type EventSink, silentSink } from '../core/events.js';
import { type Envelope, type Signer, signStatement } from './dsse.js';
import type { Statement } from './statement.js';
import type { AttachResult, AttestationStore } from './store.js';
import { type CheckedAttestation, checkAttestations } from './verify.js';

/** Signs a statement (when a signer is given) and attaches it to `repository@digest`. */
export async function attachStatement(
  store: AttestationStore,
  repository: string,
  digest: string,
  statement: Statement,
  options: { signer?: Signer | undefined; sink?: EventSink; subject?: string } = {},
): Promise<AttachResult & { envelope: Envelope }> {
  const sink = options.sink ?? silentSink;
  const envelope = await signStatement(statement, options.signer);
  const result = await store.attach(repository, digest, envelope, statement.predicateType);
  sink({
    kind: 'step-done',
    stage: 'attest',
    subject: options.subject ?? `${repository}@${digest}`,
    message: `${statement.predicateType} ${options.signer ? `signed by ${options.signer.fingerprint}` : 'UNSIGNED (no signing key)'} -> ${result.tag}${result.referrer ? ` and referrer ${result.referrer}` : ''}${result.added ? '' : ' (already attached)'}`,
  });
  return { ...result, envelope };
}

/** Every attestation of `repository@digest`, with signatures checked against `keys`. */
export async function listAttestations(
  store: AttestationStore,
  repository: string,
  digest: string,
  keys: readonly KeyObject[] = [],
): Promise<CheckedAttestation[]> {
  return checkAttestations(await store.list(repository, digest), digest, keys);
}

/** Copies every attestation of a digest from one store to another (envelopes unchanged, so signatures stay valid). */
export async function copyAttestations(
  from: { readonly store: AttestationStore; readonly repository: string },
  to: { readonly store: AttestationStore; readonly repository: string },
  digest: string,
): Promise<number> {
  const list = await from.store.list(from.repository, digest);
  let added = 0;
  for (const a of list) {
    const r = await to.store.attach(to.repository, digest, a.envelope, a.predicateType ?? 'unknown');
    if (r.added) added++;
  }
  return added;
}
