import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SlipwayError } from '../core/errors.js';

/** How to reach a Docker engine: a unix socket, or TCP (with TLS client certificates for https). */
export type DockerConnection =
  | { readonly socketPath: string }
  | {
      readonly protocol: 'http' | 'https';
      readonly host: string;
      readonly port: number;
      /** TLS material (PEM) for `https`. */
      readonly ca?: Buffer;
      readonly cert?: Buffer;
      readonly key?: Buffer;
    };

/** The engine's default socket on Linux. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

const HINT =
  'set DOCKER_HOST to unix:///path/to/docker.sock or tcp://host:port (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS)';

/**
 * The connection the docker CLI would use for this environment: `DOCKER_HOST` (`unix://PATH`,
 * `tcp://HOST[:PORT]`), `DOCKER_TLS_VERIFY` (any non-empty value but `0` means https with client
 * certificates) and `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem; default `$HOME/.docker`).
 * Without `DOCKER_HOST`: the local socket /var/run/docker.sock. The certificate files are read here.
 */
export function dockerConnectionFromEnv(env: NodeJS.ProcessEnv): DockerConnection {
  const host = env.DOCKER_HOST?.trim();
  if (!host) return { socketPath: DEFAULT_DOCKER_SOCKET };
  if (host.startsWith('unix://'))
    return { socketPath: host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET };
  let url: URL;
  try {
    // The docker CLI accepts a bare `host:port` as TCP.
    url = new URL(host.includes('://') ? host : `tcp://${host}`);
  } catch {
    throw new SlipwayError('ENGINE_UNREACHABLE', `DOCKER_HOST "${host}" is not an engine address`, {
      resource: 'DOCKER_HOST',
      hint: HINT,
    });
  }
  if (url.protocol !== 'tcp:' || url.hostname === '') {
    throw new SlipwayError(
      'ENGINE_UNREACHABLE',
      `DOCKER_HOST "${host}": only unix:// and tcp:// engine addresses are supported`,
      { resource: 'DOCKER_HOST', hint: HINT },
    );
  }
  const tls = (env.DOCKER_TLS_VERIFY ?? '') !== '' && env.DOCKER_TLS_VERIFY !== '0';
  const port = url.port === '' ? (tls ? 2376 : 2375) : Number(url.port);
  // URL keeps the brackets of an IPv6 literal; the socket layer wants the bare address.
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!tls) return { protocol: 'http', host: hostname, port };
  const certDir = env.DOCKER_CERT_PATH || (env.HOME ? path.join(env.HOME, '.docker') : '');
  if (!certDir) {
    throw new SlipwayError(
      'ENGINE_UNREACHABLE',
      'DOCKER_TLS_VERIFY is set but no certificate directory is known',
      {
        resource: 'DOCKER_CERT_PATH',
        hint: 'set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem',
      },
    );
  }
  const read = (file: string): Buffer => {
    const p = path.join(certDir, file);
    try {
      return readFileSync(p);
    } catch (err) {
      throw new SlipwayError(
        'ENGINE_UNREACHABLE',
        `cannot read the engine's TLS ${file} at ${p} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        {
          resource: p,
          hint: 'set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem',
        },
      );
    }
  };
  return {
    protocol: 'https',
    host: hostname,
    port,
    ca: read('ca.pem'),
    cert: read('cert.pem'),
    key: read('key.pem'),
  };
}

/** The connection for messages: the socket path or `proto://host:port`, never the key material. */
export function describeConnection(c: DockerConnection): string {
  return 'socketPath' in c
    ? `unix://${c.socketPath}`
    : `${c.protocol === 'https' ? 'tcp+tls' : 'tcp'}://${c.host}:${c.port}`;
}
