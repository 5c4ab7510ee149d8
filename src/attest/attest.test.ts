import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Redactor } from '../core/redact.js';
import { isCosignArtifactTag } from '../publish/oci.js';
import type { SmokeReport } from '../smoke/report.js';
import {
  pae,
  parseEnvelope,
  pemSigner,
  publicKeyFromPem,
  signStatement,
  statementOf,
  verifyEnvelope,
} from './dsse.js';
import { provenanceStatement, SMOKE_PREDICATE_TYPE, smokeStatement } from './statement.js';
import { cosignAttestationTag } from './store.js';
import { attestationGate } from './verify.js';

const keyPair = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    priv: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    pub: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
};

const digest = `sha256:${'ab'.repeat(32)}`;
const runner = { host: 'runner-1', platform: 'linux/x64', ci: 'ci', slipway: '0.1.0' };

function report(passed: boolean, startedAt = '2025-01-02T03:04:05.000Z'): SmokeReport {
  return {
    image: `reg/agent@${digest}`,
    imageName: 'agent',
    digest,
    specDigest: `sha256:${'cd'.repeat(32)}`,
    passed,
    skipped: false,
    startedAt,
    durationMs: 1500,
    assertions: [
      {
        name: 'config',
        kind: 'path',
        passed,
        observed: 'token=hunter2-secret',
        message: passed ? 'ok' : 'missing',
      },
    ],
    evidence: {
      runId: 'r',
      imageId: null,
      containerId: null,
      volumes: {},
      logTail: [],
      exitCode: null,
      readiness: null,
      listings: {},
    },
  };
}

const smoke = (passed: boolean, startedAt?: string) =>
  smokeStatement({
    report: report(passed, startedAt),
    repository: 'reg/agent',
    digest,
    summary: passed ? '1/1 assertions passed' : 'failed',
    templates: [{ name: 'agent', ref: 'a'.repeat(40), digest: `sha256:${'ef'.repeat(32)}` }],
    by: 'tester',
    runner,
    redactor: new Redactor().add('hunter2-secret'),
  });

describe('DSSE', () => {
  it('encodes PAE as the DSSE spec says', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('signs with a P-256 key, verifies with its public key and not with another', async () => {
    const a = keyPair();
    const b = keyPair();
    const envelope = await signStatement(smoke(true), pemSigner(a.priv));
    expect(envelope.signatures).toHaveLength(1);
    expect(envelope.signatures[0]?.keyid).toBe('');
    const parsed = parseEnvelope(Buffer.from(JSON.stringify(envelope)));
    expect(parsed && verifyEnvelope(parsed, publicKeyFromPem(a.pub))).toBe(true);
    expect(parsed && verifyEnvelope(parsed, publicKeyFromPem(b.pub))).toBe(false);
    // A changed payload no longer verifies.
    const tampered = { ...envelope, payload: Buffer.from('{}').toString('base64') };
    expect(verifyEnvelope(tampered, publicKeyFromPem(a.pub))).toBe(false);
  });

  it('refuses keys that are not ECDSA P-256, without echoing them', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(() => pemSigner(rsa)).toThrow(/not an ECDSA P-256 key/);
    expect(() => pemSigner('not a key')).toThrow(/not a PEM private key/);
  });
});

describe('statements', () => {
  it('a smoke statement names the digest, every assertion, the templates, when and where; no secret', () => {
    const s = smoke(false);
    expect(s.subject).toEqual([{ name: 'reg/agent', digest: { sha256: 'ab'.repeat(32) } }]);
    expect(s.predicateType).toBe(SMOKE_PREDICATE_TYPE);
    expect(s.predicate).toMatchObject({
      passed: false,
      specDigest: `sha256:${'cd'.repeat(32)}`,
      startedOn: '2025-01-02T03:04:05.000Z',
      finishedOn: '2025-01-02T03:04:06.500Z',
      runner,
      templates: [{ name: 'agent', ref: 'a'.repeat(40), digest: `sha256:${'ef'.repeat(32)}` }],
    });
    expect(s.predicate.assertions[0]?.observed).toBe('token=***');
    expect(JSON.stringify(s)).not.toContain('hunter2');
  });

  it('provenance lists template pins, base and Dockerfile as resolved dependencies, and hides secret args', () => {
    const s = provenanceStatement({
      repository: 'reg/agent',
      digest,
      image: 'agent',
      builder: { id: 'https://slipway.dev/builder/v1', version: '0.1.0' },
      source: { repository: 'https://git.example/app.git', revision: 'b'.repeat(40) },
      dockerfile: { path: 'Dockerfile', digest: `sha256:${'11'.repeat(32)}` },
      context: { path: '.', digest: `sha256:${'22'.repeat(32)}` },
      target: null,
      buildArgs: { ROOT_IMAGE: 'busybox', NPM_TOKEN: 'abc123' },
      templates: [
        {
          name: 'agent',
          source: 'git file:///t.git',
          ref: 'c'.repeat(40),
          digest: `sha256:${'33'.repeat(32)}`,
        },
      ],
      base: { name: 'reg/platform', digest: `sha256:${'44'.repeat(32)}` },
      env: 'staging',
      tags: ['staging-x'],
      invocationId: 'i',
      startedOn: '2025-01-01T00:00:00.000Z',
      finishedOn: '2025-01-01T00:01:00.000Z',
      runner,
      redactor: new Redactor(),
    });
    const p = s.predicate as {
      buildDefinition: {
        externalParameters: { buildArgs: Record<string, string> };
        resolvedDependencies: unknown[];
      };
    };
    expect(p.buildDefinition.externalParameters.buildArgs).toEqual({
      ROOT_IMAGE: 'busybox',
      NPM_TOKEN: '***',
    });
    expect(p.buildDefinition.resolvedDependencies).toEqual([
      { name: 'source', uri: 'git+https://git.example/app.git', digest: { gitCommit: 'b'.repeat(40) } },
      {
        name: 'template:agent',
        uri: 'git file:///t.git',
        digest: { sha256: '33'.repeat(32), gitCommit: 'c'.repeat(40) },
      },
      { name: 'base-image', uri: 'reg/platform', digest: { sha256: '44'.repeat(32) } },
      { name: 'dockerfile', uri: 'Dockerfile', digest: { sha256: '11'.repeat(32) } },
      { name: 'context', uri: '.', digest: { sha256: '22'.repeat(32) } },
    ]);
  });

  it('the cosign tag of a digest, which status does not count as an image', () => {
    expect(cosignAttestationTag(digest)).toBe(`sha256-${'ab'.repeat(32)}.att`);
    expect(isCosignArtifactTag(cosignAttestationTag(digest))).toBe(true);
    expect(isCosignArtifactTag('staging-latest')).toBe(false);
  });
});

describe('attestationGate', () => {
  const stored = async (passed: boolean, priv?: string, startedAt?: string) => {
    const envelope = await signStatement(smoke(passed, startedAt), priv ? pemSigner(priv) : undefined);
    return {
      digest: `sha256:${passed}${startedAt}`,
      predicateType: SMOKE_PREDICATE_TYPE,
      envelope,
      statement: statementOf(envelope),
      foundIn: ['cosign-tag' as const],
    };
  };

  it('says which: missing, failed, wrong key, unsigned, or passed', async () => {
    const a = keyPair();
    const b = keyPair();
    const key = publicKeyFromPem(a.pub);
    expect(attestationGate(digest, [], [key]).reason).toBe('missing');
    expect(attestationGate(digest, [await stored(true, b.priv)], [key]).reason).toBe('wrong-key');
    expect(attestationGate(digest, [await stored(true)], [key]).reason).toBe('unsigned');
    expect(attestationGate(digest, [await stored(false, a.priv)], [key]).reason).toBe('failed');
    const ok = attestationGate(digest, [await stored(true, a.priv)], [key]);
    expect([ok.passed, ok.reason, ok.record?.by]).toEqual([true, null, 'tester']);
    // The newest verdict wins: a later failure after a pass fails closed.
    const both = [await stored(true, a.priv), await stored(false, a.priv, '2025-02-01T00:00:00.000Z')];
    expect(attestationGate(digest, both, [key]).reason).toBe('failed');
    // Without a key policy, an unsigned passing attestation counts (not checked).
    expect(attestationGate(digest, [await stored(true)], []).passed).toBe(true);
  });
});
