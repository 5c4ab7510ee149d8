import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeConnection, dockerConnectionFromEnv } from './docker-connection.js';

let certs: string;
beforeEach(() => {
  certs = mkdtempSync(path.join(tmpdir(), 'slipway-certs-'));
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(certs, f), `${f} content`);
});
afterEach(() => rmSync(certs, { recursive: true, force: true }));

describe('dockerConnectionFromEnv', () => {
  it('uses the local socket without DOCKER_HOST, and a unix:// path when given', () => {
    expect(dockerConnectionFromEnv({})).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: '' })).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toEqual({
      socketPath: '/run/user/1000/docker.sock',
    });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'unix://' })).toEqual({
      socketPath: '/var/run/docker.sock',
    });
  });

  it('reads tcp:// (and a bare host:port) as plain http, default port 2375', () => {
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toEqual({
      protocol: 'http',
      host: '10.0.0.5',
      port: 2375,
    });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'tcp://engine.internal' })).toEqual({
      protocol: 'http',
      host: 'engine.internal',
      port: 2375,
    });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'engine.internal:4243' })).toEqual({
      protocol: 'http',
      host: 'engine.internal',
      port: 4243,
    });
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'tcp://[::1]:2375' })).toEqual({
      protocol: 'http',
      host: '::1',
      port: 2375,
    });
    // DOCKER_TLS_VERIFY=0 does not turn TLS on (the docker CLI reads only non-empty values).
    expect(dockerConnectionFromEnv({ DOCKER_HOST: 'tcp://h:1', DOCKER_TLS_VERIFY: '0' })).toMatchObject({
      protocol: 'http',
    });
  });

  it('with DOCKER_TLS_VERIFY uses https, default port 2376, and reads the certificates from DOCKER_CERT_PATH', () => {
    const c = dockerConnectionFromEnv({
      DOCKER_HOST: 'tcp://engine.internal',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
    });
    expect(c).toEqual({
      protocol: 'https',
      host: 'engine.internal',
      port: 2376,
      ca: Buffer.from('ca.pem content'),
      cert: Buffer.from('cert.pem content'),
      key: Buffer.from('key.pem content'),
    });
    expect(describeConnection(c)).toBe('tcp+tls://engine.internal:2376');
  });

  it('falls back to $HOME/.docker for the certificates', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'slipway-home-'));
    try {
      mkdirSync(path.join(home, '.docker'));
      writeFileSync(path.join(home, '.docker', 'ca.pem'), 'home ca');
      writeFileSync(path.join(home, '.docker', 'cert.pem'), 'home cert');
      writeFileSync(path.join(home, '.docker', 'key.pem'), 'home key');
      expect(
        dockerConnectionFromEnv({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', HOME: home }),
      ).toMatchObject({ protocol: 'https', port: 2376, key: Buffer.from('home key') });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('names the missing certificate file, never its content', () => {
    rmSync(path.join(certs, 'key.pem'));
    expect(() =>
      dockerConnectionFromEnv({
        DOCKER_HOST: 'tcp://h:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: certs,
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'ENGINE_UNREACHABLE',
        message: `cannot read the engine's TLS key.pem at ${path.join(certs, 'key.pem')} (ENOENT)`,
        resource: path.join(certs, 'key.pem'),
      }),
    );
  });

  it('refuses addresses it cannot reach the engine at', () => {
    for (const host of ['ssh://user@host', 'npipe:////./pipe/docker_engine', 'http://[bad']) {
      expect(() => dockerConnectionFromEnv({ DOCKER_HOST: host })).toThrow(
        expect.objectContaining({ code: 'ENGINE_UNREACHABLE', resource: 'DOCKER_HOST' }),
      );
    }
  });
});
