import { describe, expect, it } from 'vitest';
import { configDigestOf, parseChallenge, sha256Digest } from './oci.js';

describe('parseChallenge', () => {
  it('parses a bearer challenge with quoted parameters', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example.com/token',
        service: 'registry.example.com',
        scope: 'repository:a/b:pull,push',
      },
    });
  });

  it('parses a basic challenge and unquoted values; null without a header', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm' },
    });
    expect(parseChallenge('Bearer realm=https://a/token, service=svc')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://a/token', service: 'svc' },
    });
    expect(parseChallenge(null)).toBeNull();
  });
});

describe('manifest helpers', () => {
  it('digests bytes as sha256:<hex>', () => {
    expect(sha256Digest(Buffer.from('abc'))).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('reads config.digest of an image manifest, null for an index or junk', () => {
    expect(
      configDigestOf(JSON.stringify({ schemaVersion: 2, config: { digest: 'sha256:abc' }, layers: [] })),
    ).toBe('sha256:abc');
    expect(configDigestOf(JSON.stringify({ schemaVersion: 2, manifests: [] }))).toBeNull();
    expect(configDigestOf('not json')).toBeNull();
  });
});
