import { createHash } from 'node:crypto';
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

describe('dockerConnectionFromEnv with docker contexts', () => {
  let config: string;
  // A test may point `config` elsewhere; the directory made here is removed all the same.
  let made: string;
  beforeEach(() => {
    made = mkdtempSync(path.join(tmpdir(), 'slipway-docker-config-'));
    config = made;
  });
  afterEach(() => rmSync(made, { recursive: true, force: true }));

  /** Writes a context the way `docker context create` stores it. */
  const context = (name: string, host: string, tls: Record<string, string> = {}, skip = false) => {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(path.join(config, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(
      path.join(config, 'contexts', 'meta', id, 'meta.json'),
      JSON.stringify({
        Name: name,
        Metadata: {},
        Endpoints: { docker: { Host: host, SkipTLSVerify: skip } },
      }),
    );
    if (Object.keys(tls).length > 0) {
      mkdirSync(path.join(config, 'contexts', 'tls', id, 'docker'), { recursive: true });
      for (const [file, content] of Object.entries(tls))
        writeFileSync(path.join(config, 'contexts', 'tls', id, 'docker', file), content);
    }
  };

  it('reads the endpoint of DOCKER_CONTEXT from the context store under DOCKER_CONFIG', () => {
    context('ci-engine', 'tcp://10.1.2.3:2375');
    expect(dockerConnectionFromEnv({ DOCKER_CONTEXT: 'ci-engine', DOCKER_CONFIG: config })).toEqual({
      protocol: 'http',
      host: '10.1.2.3',
      port: 2375,
    });
  });

  it("uses the context's TLS material for https, default port 2376", () => {
    context('secure', 'tcp://engine.internal', {
      'ca.pem': 'ctx ca',
      'cert.pem': 'ctx cert',
      'key.pem': 'ctx key',
    });
    const c = dockerConnectionFromEnv({ DOCKER_CONTEXT: 'secure', DOCKER_CONFIG: config });
    expect(c).toEqual({
      protocol: 'https',
      host: 'engine.internal',
      port: 2376,
      ca: Buffer.from('ctx ca'),
      cert: Buffer.from('ctx cert'),
      key: Buffer.from('ctx key'),
    });
    expect(describeConnection(c)).toBe('tcp+tls://engine.internal:2376');
  });

  it('falls back to the currentContext of config.json under $HOME/.docker; "default" is the local socket', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'slipway-home-'));
    try {
      config = path.join(home, '.docker');
      context('remote', 'unix:///run/remote.sock');
      writeFileSync(path.join(config, 'config.json'), JSON.stringify({ currentContext: 'remote' }));
      expect(dockerConnectionFromEnv({ HOME: home })).toEqual({ socketPath: '/run/remote.sock' });
      expect(dockerConnectionFromEnv({ HOME: home, DOCKER_CONTEXT: 'default' })).toEqual({
        socketPath: '/var/run/docker.sock',
      });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('DOCKER_HOST wins over DOCKER_CONTEXT, as in the docker CLI', () => {
    context('ci-engine', 'tcp://10.1.2.3:2375');
    expect(
      dockerConnectionFromEnv({
        DOCKER_HOST: 'tcp://127.0.0.1:2375',
        DOCKER_CONTEXT: 'ci-engine',
        DOCKER_CONFIG: config,
      }),
    ).toEqual({ protocol: 'http', host: '127.0.0.1', port: 2375 });
  });

  it('refuses a context that does not exist, an ssh endpoint and skipped TLS verification, naming the context', () => {
    expect(() => dockerConnectionFromEnv({ DOCKER_CONTEXT: 'nope', DOCKER_CONFIG: config })).toThrow(
      expect.objectContaining({
        code: 'ENGINE_UNREACHABLE',
        resource: 'context nope',
        message: expect.stringContaining('docker context "nope" does not exist'),
      }),
    );
    context('over-ssh', 'ssh://user@host');
    expect(() => dockerConnectionFromEnv({ DOCKER_CONTEXT: 'over-ssh', DOCKER_CONFIG: config })).toThrow(
      expect.objectContaining({ code: 'ENGINE_UNREACHABLE', resource: 'context over-ssh' }),
    );
    context('insecure', 'tcp://h:2376', { 'ca.pem': 'x' }, true);
    expect(() => dockerConnectionFromEnv({ DOCKER_CONTEXT: 'insecure', DOCKER_CONFIG: config })).toThrow(
      expect.objectContaining({
        code: 'ENGINE_UNREACHABLE',
        message: expect.stringContaining('skips TLS verification'),
      }),
    );
  });
});
