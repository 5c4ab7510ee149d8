import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Sigstore from '@sigstore/core';
import { SlipwayError } from '../core/errors.js';
import type { Statement } from './statement.js';

// @sigstore/core (CommonJS) loads when the first envelope is encoded, not when the CLI starts.
const requireHere = createRequire(import.meta.url);

/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse) signed with ECDSA P-256 over the
 * pre-authentication encoding with SHA-256: the format `cosign verify-attestation --key` checks.
 */

/** The payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** The media type of a DSSE envelope stored as a blob. */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

/** A DSSE envelope. */
export interface Envelope {
  readonly payloadType: string;
  /** base64 of the payload bytes. */
  readonly payload: string;
  readonly signatures: ReadonlyArray<{ readonly keyid: string; readonly sig: string }>;
}

/** The signing port: signs the PAE of a payload; the private key never leaves it. */
export interface Signer {
  /** `sha256:<hex>` of the public key's DER (SPKI): how outputs name the key. */
  readonly fingerprint: string;
  /** The keyid written into signatures (empty, as cosign writes for key-pair signing). */
  readonly keyid: string;
  /** The public key (SPKI PEM), for printing and verification. */
  readonly publicKeyPem: string;
  /** A DER ECDSA signature over `data` with SHA-256. */
  sign(data: Buffer): Promise<Buffer>;
}

/** The DSSE pre-authentication encoding (PAE) of a payload. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  return (requireHere('@sigstore/core') as typeof Sigstore).dsse.preAuthEncoding(payloadType, payload);
}

/** `sha256:<hex>` of a public key's SPKI DER. */
export function keyFingerprint(key: KeyObject): string {
  return `sha256:${createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

function requireP256(key: KeyObject, what: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
    throw new SlipwayError(
      'USAGE',
      `the ${what} is not an ECDSA P-256 key (${key.asymmetricKeyType ?? '?'} ${curve ?? ''})`,
      {
        hint: 'generate one with: openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out slipway.key',
      },
    );
  }
}

/** A {@link Signer} over an unencrypted ECDSA P-256 private key in PEM (PKCS#8 or SEC1). */
export function pemSigner(pem: string): Signer {
  if (/ENCRYPTED/.test(pem)) {
    throw new SlipwayError('USAGE', 'the signing key is encrypted; Slipway needs an unencrypted PEM key', {
      hint: "keep the key in a CI secret instead of a passphrase; cosign's encrypted key format is not read",
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // The key's text never goes into a message.
    throw new SlipwayError('USAGE', 'the signing key is not a PEM private key', {
      hint: 'pass an ECDSA P-256 key in PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)',
    });
  }
  requireP256(key, 'signing key');
  const pub = createPublicKey(key);
  return {
    fingerprint: keyFingerprint(pub),
    keyid: '',
    publicKeyPem: pub.export({ type: 'spki', format: 'pem' }).toString(),
    sign: async (data) => sign('sha256', data, key),
  };
}

/** Reads an ECDSA P-256 public key (SPKI PEM, as `cosign.pub`). */
export function publicKeyFromPem(pem: string, what = 'public key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new SlipwayError('USAGE', `the ${what} is not a PEM public key`, {
      hint: 'pass the public key in PEM (-----BEGIN PUBLIC KEY-----), e.g. cosign.pub',
    });
  }
  requireP256(key, what);
  return key;
}

/** Serializes a statement and wraps it in an envelope, signed when a signer is given. */
export async function signStatement(statement: Statement, signer: Signer | undefined): Promise<Envelope> {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const signatures = signer
    ? [
        {
          keyid: signer.keyid,
          sig: (await signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))).toString('base64'),
        },
      ]
    : [];
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures };
}

/** True when one of the envelope's signatures verifies with `key`. */
export function verifyEnvelope(envelope: Envelope, key: KeyObject): boolean {
  const data = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  return envelope.signatures.some((s) => {
    try {
      return verify('sha256', data, key, Buffer.from(s.sig, 'base64'));
    } catch {
      return false;
    }
  });
}

/** Parses envelope bytes; null when they are not a DSSE envelope. */
export function parseEnvelope(bytes: Buffer): Envelope | null {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as Partial<Envelope>;
    if (typeof doc.payloadType !== 'string' || typeof doc.payload !== 'string') return null;
    const signatures = Array.isArray(doc.signatures)
      ? doc.signatures
          .filter((s) => s && typeof s.sig === 'string')
          .map((s) => ({ keyid: s.keyid ?? '', sig: s.sig }))
      : [];
    return { payloadType: doc.payloadType, payload: doc.payload, signatures };
  } catch {
    return null;
  }
}

/** The in-toto statement inside an envelope; null when the payload is not one. */
export function statementOf(envelope: Envelope): Statement | null {
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return null;
  try {
    const doc = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as Partial<Statement>;
    if (typeof doc.predicateType !== 'string' || !Array.isArray(doc.subject)) return null;
    return doc as Statement;
  } catch {
    return null;
  }
}
