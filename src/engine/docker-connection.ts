import { createHash } from 'node:crypto';
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
 * The connection the docker CLI would use for this environment, in its order: `DOCKER_HOST`
 * (`unix://PATH`, `tcp://HOST[:PORT]`) with `DOCKER_TLS_VERIFY` (any non-empty value but `0`
 * means https with client certificates) and `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem;
 * default `$HOME/.docker`); else the context named by `DOCKER_CONTEXT`, else the config's
 * `currentContext` (read from the CLI's context store under `$DOCKER_CONFIG`, default
 * `$HOME/.docker`); else the local socket /var/run/docker.sock. Files are read here.
 */
export function dockerConnectionFromEnv(env: NodeJS.ProcessEnv): DockerConnection {
  const host = env.DOCKER_HOST?.trim();
  if (host) return fromHost(host, 'DOCKER_HOST', env);
  const context = contextName(env);
  if (context !== undefined && context !== 'default') return fromContext(context, env);
  return { socketPath: DEFAULT_DOCKER_SOCKET };
}

/** The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `$HOME/.docker`. */
function configDir(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env.DOCKER_CONFIG?.trim() || (env.HOME ? path.join(env.HOME, '.docker') : '');
  return dir || undefined;
}

/** `DOCKER_CONTEXT`, else the `currentContext` of the CLI's config.json, else none. */
function contextName(env: NodeJS.ProcessEnv): string | undefined {
  const named = env.DOCKER_CONTEXT?.trim();
  if (named) return named;
  const dir = configDir(env);
  if (!dir) return undefined;
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'config.json'), 'utf8');
  } catch {
    return undefined; // No CLI config: no current context.
  }
  try {
    const current = (JSON.parse(text) as { currentContext?: unknown }).currentContext;
    return typeof current === 'string' && current.trim() ? current.trim() : undefined;
  } catch {
    throw new SlipwayError('ENGINE_UNREACHABLE', `${path.join(dir, 'config.json')} is not valid JSON`, {
      resource: path.join(dir, 'config.json'),
      hint: 'fix the docker CLI config, or set DOCKER_HOST',
    });
  }
}

/**
 * The connection a named context stores: `contexts/meta/<sha256 of the name>/meta.json` holds
 * the endpoint, `contexts/tls/<same>/docker/` its TLS material (see `docker context inspect`).
 */
function fromContext(name: string, env: NodeJS.ProcessEnv): DockerConnection {
  const dir = configDir(env);
  const id = createHash('sha256').update(name).digest('hex');
  const metaFile = dir
    ? path.join(dir, 'contexts', 'meta', id, 'meta.json')
    : `contexts/meta/${id}/meta.json`;
  const hint = 'list contexts with `docker context ls`; set DOCKER_CONTEXT to one of them, or DOCKER_HOST';
  let meta: { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } };
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SlipwayError(
      'ENGINE_UNREACHABLE',
      code === 'ENOENT'
        ? `docker context "${name}" does not exist (no ${metaFile})`
        : `docker context "${name}": cannot read ${metaFile} (${code ?? (err as Error).message})`,
      { resource: `context ${name}`, hint },
    );
  }
  const endpoint = meta.Endpoints?.docker;
  const host = typeof endpoint?.Host === 'string' ? endpoint.Host.trim() : '';
  if (!host) {
    throw new SlipwayError('ENGINE_UNREACHABLE', `docker context "${name}" has no docker endpoint`, {
      resource: `context ${name}`,
      hint,
    });
  }
  if (endpoint?.SkipTLSVerify === true) {
    throw new SlipwayError(
      'ENGINE_UNREACHABLE',
      `docker context "${name}" skips TLS verification, which slipway does not do`,
      {
        resource: `context ${name}`,
        hint: "add the engine's CA to the context (docker context update --docker ca=…)",
      },
    );
  }
  const tlsDir = dir ? path.join(dir, 'contexts', 'tls', id, 'docker') : undefined;
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const file of ['ca', 'cert', 'key'] as const) {
    if (!tlsDir) break;
    try {
      tls[file] = readFileSync(path.join(tlsDir, `${file}.pem`));
    } catch {
      // The context stores only the material it has (a CA alone, or none for plain TCP).
    }
  }
  return fromHost(host, `context ${name}`, env, Object.keys(tls).length > 0 ? tls : undefined);
}

/** Parses an engine address (`unix://`, `tcp://`, bare `host:port`); `source` names it in errors. */
function fromHost(
  host: string,
  source: string,
  env: NodeJS.ProcessEnv,
  contextTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer },
): DockerConnection {
  if (host.startsWith('unix://'))
    return { socketPath: host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET };
  let url: URL;
  try {
    // The docker CLI accepts a bare `host:port` as TCP.
    url = new URL(host.includes('://') ? host : `tcp://${host}`);
  } catch {
    throw new SlipwayError('ENGINE_UNREACHABLE', `${source} "${host}" is not an engine address`, {
      resource: source,
      hint: HINT,
    });
  }
  if (url.protocol !== 'tcp:' || url.hostname === '') {
    throw new SlipwayError(
      'ENGINE_UNREACHABLE',
      `${source} "${host}": only unix:// and tcp:// engine addresses are supported`,
      { resource: source, hint: HINT },
    );
  }
  const tls =
    contextTls !== undefined || ((env.DOCKER_TLS_VERIFY ?? '') !== '' && env.DOCKER_TLS_VERIFY !== '0');
  const port = url.port === '' ? (tls ? 2376 : 2375) : Number(url.port);
  // URL keeps the brackets of an IPv6 literal; the socket layer wants the bare address.
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!tls) return { protocol: 'http', host: hostname, port };
  if (contextTls) return { protocol: 'https', host: hostname, port, ...contextTls };
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
