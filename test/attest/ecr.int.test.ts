/**
 * Attestations on ECR, through the real `@aws-sdk/client-ecr` against the loopback ECR endpoint
 * (backed by a private registry): blobs go up with the layer upload API, manifests with
 * PutImage, and the attestation is stored both in the cosign layout and as an OCI referrer,
 * found again through the referrers API that the endpoint serves.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachStatement, listAttestations } from '../../src/attest/attest.js';
import { DSSE_MEDIA_TYPE, pemSigner } from '../../src/attest/dsse.js';
import { provenanceStatement } from '../../src/attest/statement.js';
import { RegistryAttestationStore } from '../../src/attest/store.js';
import { Redactor } from '../../src/core/redact.js';
import { sha256Digest } from '../../src/publish/oci.js';
import { openRegistry } from '../../src/publish/open.js';
import type { Registry } from '../../src/publish/registry.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { OwnRegistry } from '../support/own-registry.js';

let backing: OwnRegistry;
let ecr: EcrTestServer;
let registry: Registry;
const REPO = 'molecule-ai/molecule-platform-agent';

beforeAll(async () => {
  backing = await OwnRegistry.start();
  ecr = await EcrTestServer.start({ registry: backing.addr, distribution: true });
  ecr.repositories.set(REPO, { scanOnPush: false, tagMutability: 'MUTABLE' });
  registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', {
    env: {
      AWS_ENDPOINT_URL_ECR: ecr.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDATTESTTEST',
      AWS_SECRET_ACCESS_KEY: 'attest-test-secret',
      AWS_REGION: 'us-east-1',
    },
  });
});

afterAll(async () => {
  await ecr?.close();
  await backing?.stop();
});

/** An image written only through the registry port: layer upload API, then PutImage. */
async function pushTinyImage(): Promise<string> {
  const layer = Buffer.from('not really a tarball, but a blob all the same');
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] },
    }),
  );
  for (const blob of [layer, config]) {
    expect(await registry.hasBlob(REPO, sha256Digest(blob))).toBe(false);
    await registry.putBlob(REPO, sha256Digest(blob), blob);
    expect(await registry.hasBlob(REPO, sha256Digest(blob))).toBe(true);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256Digest(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: sha256Digest(layer),
          size: layer.length,
        },
      ],
    }),
  );
  return registry.putManifest(REPO, 'staging-latest', {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    body: manifest,
  });
}

describe('attestations on ECR', () => {
  it('are stored as a cosign .att layer and an OCI referrer, and found through the referrers API', async () => {
    const digest = await pushTinyImage();
    expect(await registry.resolve(REPO, 'staging-latest')).toBe(digest);
    expect(ecr.calls).toEqual(
      expect.arrayContaining([
        'InitiateLayerUpload',
        'UploadLayerPart',
        'CompleteLayerUpload',
        'BatchCheckLayerAvailability',
        'PutImage',
      ]),
    );

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = pemSigner(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const store = new RegistryAttestationStore(registry);
    const statement = provenanceStatement({
      repository: registry.imageName(REPO).name,
      digest,
      image: 'platform-agent',
      builder: { id: 'https://slipway.dev/builder/v1', version: 'test' },
      source: { repository: null, revision: 'a'.repeat(40) },
      dockerfile: { path: 'Dockerfile', digest: null },
      context: { path: '.', digest: `sha256:${'1'.repeat(64)}` },
      target: null,
      buildArgs: {},
      templates: [],
      base: null,
      env: 'staging',
      tags: ['staging-latest'],
      invocationId: 'ecr-test',
      startedOn: new Date().toISOString(),
      finishedOn: new Date().toISOString(),
      runner: { host: 'h', platform: 'linux/x64', ci: null, slipway: 'test' },
      redactor: new Redactor(),
    });
    const attached = await attachStatement(store, REPO, digest, statement, { signer });
    expect(attached.referrer).toMatch(/^sha256:[a-f0-9]{64}$/);

    // The referrers API lists it, as an artifact of the DSSE type whose subject is the image.
    const referrers = await registry.referrers(REPO, digest, DSSE_MEDIA_TYPE);
    expect(referrers?.map((r) => [r.digest, r.artifactType])).toEqual([[attached.referrer, DSSE_MEDIA_TYPE]]);
    expect(ecr.distributionRequests.some((r) => r.includes(`/referrers/${digest}`))).toBe(true);

    const listed = await listAttestations(store, REPO, digest, [publicKey]);
    expect(listed.map((a) => [a.predicateType, a.signature, [...a.foundIn].sort()])).toEqual([
      ['https://slsa.dev/provenance/v1', 'verified', ['cosign-tag', 'referrers']],
    ]);
  });
});
