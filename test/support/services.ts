/**
 * Where the real services started by `scripts/services.sh up` listen. Integration tests call
 * {@link requireServices} first: a missing service is a test failure, never a skip.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';

/** The local OCI registry, host:port (plain http on loopback). */
export const registryAddr = process.env.SLIPWAY_REGISTRY_ADDR ?? '127.0.0.1:5000';
/** PostgreSQL connection string for tests. */
export const pgUrl =
  process.env.SLIPWAY_TEST_PG_URL ??
  `postgres://${process.env.SLIPWAY_PG_USER ?? 'slipway'}:${process.env.SLIPWAY_PG_PASSWORD ?? 'slipway'}@127.0.0.1:${process.env.SLIPWAY_PG_PORT ?? '5432'}/${process.env.SLIPWAY_PG_DB ?? 'slipway'}`;
/** The engine on loopback TCP (`scripts/services.sh up` forwards it to the local socket). */
export const dockerTcpAddr = process.env.SLIPWAY_DOCKER_TCP_ADDR ?? '127.0.0.1:2375';
/** The local root image (busybox-static), since nothing can be pulled. */
export const rootImage = process.env.SLIPWAY_ROOT_IMAGE ?? 'slipway.local/root:busybox';

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Throws, naming the service and the fix, unless the engine, registry, PostgreSQL and root image are there. */
export async function requireServices(
  which: Array<'docker' | 'dockerTcp' | 'registry' | 'postgres' | 'rootImage'> = [
    'docker',
    'registry',
    'postgres',
    'rootImage',
  ],
): Promise<void> {
  const problems: string[] = [];
  if (which.includes('docker') || which.includes('rootImage')) {
    try {
      execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 });
    } catch {
      problems.push('the Docker engine does not answer');
    }
  }
  if (which.includes('rootImage') && problems.length === 0) {
    try {
      execFileSync('docker', ['image', 'inspect', rootImage], { stdio: 'ignore', timeout: 15_000 });
    } catch {
      problems.push(`the root image ${rootImage} is missing`);
    }
  }
  if (which.includes('registry')) {
    const [host, port] = registryAddr.split(':');
    if (!(await tcpOpen(host ?? '127.0.0.1', Number(port ?? 5000))))
      problems.push(`no registry listens on ${registryAddr}`);
  }
  if (which.includes('dockerTcp')) {
    const [host, port] = dockerTcpAddr.split(':');
    if (!(await tcpOpen(host ?? '127.0.0.1', Number(port ?? 2375))))
      problems.push(`the Docker engine does not listen on tcp://${dockerTcpAddr}`);
  }
  if (which.includes('postgres')) {
    const port = Number(process.env.SLIPWAY_PG_PORT ?? 5432);
    if (!(await tcpOpen('127.0.0.1', port))) problems.push(`no PostgreSQL listens on 127.0.0.1:${port}`);
  }
  if (problems.length > 0) {
    throw new Error(`integration services missing: ${problems.join('; ')}. Run: bash scripts/services.sh up`);
  }
}
