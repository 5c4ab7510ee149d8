import { SlipwayError } from '../core/errors.js';
import { sha256Digest } from '../publish/oci.js';
import type { Descriptor, Registry } from '../publish/registry.js';
import { DSSE_MEDIA_TYPE, type Envelope, parseEnvelope, statementOf } from './dsse.js';
import type { Statement } from './statement.js';

/**
 * The attestation store port, and its implementation on any {@link Registry}: the cosign
 * layout (an OCI image manifest tagged `sha256-<hex>.att` in the image's repository, one DSSE
 * envelope per layer, appended to), plus an OCI 1.1 referrer (a manifest whose `subject` is
 * the image) where the registry serves the referrers API.
 */

/** The OCI image manifest media type. */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** The layer annotation cosign writes with the statement's predicate type. */
export const PREDICATE_TYPE_ANNOTATION = 'predicateType';
/** The layer annotation cosign writes for the (detached) signature; empty for a DSSE envelope. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
const EMPTY_JSON = Buffer.from('{}');

/** The cosign attestation tag of a digest: `sha256-<hex>.att`. */
export function cosignAttestationTag(digest: string): string {
  return `${digest.replace(':', '-')}.att`;
}

/** An attestation found for a digest. */
export interface StoredAttestation {
  /** The digest of the envelope blob (the same envelope has the same digest wherever it is stored). */
  readonly digest: string;
  readonly predicateType: string | null;
  readonly envelope: Envelope;
  readonly statement: Statement | null;
  /** Where it was found. */
  readonly foundIn: ReadonlyArray<'cosign-tag' | 'referrers'>;
}

/** What {@link AttestationStore.attach} did. */
export interface AttachResult {
  readonly digest: string;
  /** The cosign tag the envelope is a layer of. */
  readonly tag: string;
  /** The referrer manifest's digest, or null when the registry has no referrers API. */
  readonly referrer: string | null;
  /** False when the envelope was already attached. */
  readonly added: boolean;
}

/** Where attestations of image digests are kept. */
export interface AttestationStore {
  /** Attaches an envelope to the image `repository@digest`, next to the ones already there. */
  attach(
    repository: string,
    digest: string,
    envelope: Envelope,
    predicateType: string,
  ): Promise<AttachResult>;
  /** Every attestation of `repository@digest` (cosign tag and referrers, without duplicates). */
  list(repository: string, digest: string): Promise<StoredAttestation[]>;
}

interface ManifestDoc {
  schemaVersion?: number;
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** {@link AttestationStore} on a registry. */
export class RegistryAttestationStore implements AttestationStore {
  constructor(private readonly registry: Registry) {}

  async attach(
    repository: string,
    digest: string,
    envelope: Envelope,
    predicateType: string,
  ): Promise<AttachResult> {
    const subject = await this.registry.manifest(repository, digest);
    if (!subject) {
      throw new SlipwayError(
        'REGISTRY_ERROR',
        `cannot attest ${this.registry.imageName(repository).name}@${digest}: no such image`,
        {
          resource: `${this.registry.imageName(repository).name}@${digest}`,
          hint: 'push the image first',
        },
      );
    }
    const bytes = Buffer.from(JSON.stringify(envelope), 'utf8');
    const layer: Descriptor = {
      mediaType: DSSE_MEDIA_TYPE,
      digest: sha256Digest(bytes),
      size: bytes.length,
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: '', [PREDICATE_TYPE_ANNOTATION]: predicateType },
    };
    await this.ensureBlob(repository, layer.digest, bytes);
    const tag = cosignAttestationTag(digest);
    const added = await this.appendToTag(repository, tag, layer);
    let referrer: string | null = null;
    if ((await this.registry.referrers(repository, digest)) !== null) {
      await this.ensureBlob(repository, sha256Digest(EMPTY_JSON), EMPTY_JSON);
      const doc: ManifestDoc = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: DSSE_MEDIA_TYPE,
        config: { mediaType: EMPTY_MEDIA_TYPE, digest: sha256Digest(EMPTY_JSON), size: 2 },
        layers: [layer],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.body.length },
        annotations: { [PREDICATE_TYPE_ANNOTATION]: predicateType },
      };
      const body = Buffer.from(JSON.stringify(doc), 'utf8');
      referrer = await this.registry.putManifest(repository, sha256Digest(body), {
        mediaType: OCI_MANIFEST,
        body,
      });
    }
    return { digest: layer.digest, tag, referrer, added };
  }

  async list(repository: string, digest: string): Promise<StoredAttestation[]> {
    const found = new Map<string, { layer: Descriptor; foundIn: Set<'cosign-tag' | 'referrers'> }>();
    const note = (layer: Descriptor, where: 'cosign-tag' | 'referrers') => {
      if (layer.mediaType !== DSSE_MEDIA_TYPE) return;
      const seen = found.get(layer.digest) ?? { layer, foundIn: new Set() };
      seen.foundIn.add(where);
      found.set(layer.digest, seen);
    };
    const att = await this.registry.manifest(repository, cosignAttestationTag(digest));
    for (const layer of att ? (parseManifest(att.body).layers ?? []) : []) note(layer, 'cosign-tag');
    const referrers = (await this.registry.referrers(repository, digest)) ?? [];
    for (const r of referrers.filter((d) => d.artifactType === DSSE_MEDIA_TYPE)) {
      const m = await this.registry.manifest(repository, r.digest);
      const doc = m ? parseManifest(m.body) : {};
      if (doc.subject?.digest !== digest) continue;
      for (const layer of doc.layers ?? []) note(layer, 'referrers');
    }
    const out: StoredAttestation[] = [];
    for (const { layer, foundIn } of found.values()) {
      const bytes = await this.registry.readBlob(repository, layer.digest);
      const envelope = bytes ? parseEnvelope(bytes) : null;
      if (!envelope) continue;
      const statement = statementOf(envelope);
      out.push({
        digest: layer.digest,
        predicateType: statement?.predicateType ?? layer.annotations?.[PREDICATE_TYPE_ANNOTATION] ?? null,
        envelope,
        statement,
        foundIn: [...foundIn],
      });
    }
    return out;
  }

  private async ensureBlob(repository: string, digest: string, bytes: Buffer): Promise<void> {
    if (!(await this.registry.hasBlob(repository, digest)))
      await this.registry.putBlob(repository, digest, bytes);
  }

  /**
   * Appends a layer to the cosign tag's manifest (creating it), keeping every layer already
   * there. The registry has no compare-and-set: the write is read back, and redone when another
   * writer's append replaced it in between.
   */
  private async appendToTag(repository: string, tag: string, layer: Descriptor): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.registry.manifest(repository, tag);
      const layers = current ? (parseManifest(current.body).layers ?? []) : [];
      if (layers.some((l) => l.digest === layer.digest)) return attempt > 0;
      const all = [...layers, layer];
      const config = Buffer.from(
        JSON.stringify({
          architecture: '',
          os: '',
          config: {},
          rootfs: { type: 'layers', diff_ids: all.map((l) => l.digest) },
        }),
        'utf8',
      );
      await this.ensureBlob(repository, sha256Digest(config), config);
      const doc: ManifestDoc = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: sha256Digest(config), size: config.length },
        layers: all,
      };
      await this.registry.putManifest(repository, tag, {
        mediaType: OCI_MANIFEST,
        body: Buffer.from(JSON.stringify(doc), 'utf8'),
      });
      const after = await this.registry.manifest(repository, tag);
      if (after && (parseManifest(after.body).layers ?? []).some((l) => l.digest === layer.digest))
        return true;
    }
    throw new SlipwayError(
      'REGISTRY_ERROR',
      `could not append to ${repository}:${tag}: other writers kept replacing it`,
      {
        resource: `${repository}:${tag}`,
        hint: 'retry the step',
      },
    );
  }
}

function parseManifest(body: Buffer): ManifestDoc {
  try {
    return JSON.parse(body.toString('utf8')) as ManifestDoc;
  } catch {
    return {};
  }
}
