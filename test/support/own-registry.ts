/**
 * A private docker-registry (distribution) on its own loopback port, with its own config and
 * storage directory and deletes enabled: for tests that delete manifests, which must never
 * touch the shared registry. Stopped by its PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** A running private registry. */
export class OwnRegistry {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    /** host:port, plain http on loopback. */
    readonly addr: string,
  ) {}

  /** Starts `docker-registry serve` with deletes enabled and waits until `/v2/` answers. */
  static async start(): Promise<OwnRegistry> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slipway-own-registry-'));
    const addr = `127.0.0.1:${await freePort()}`;
    const config = path.join(dir, 'config.yml');
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${addr}\n`,
    );
    const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    const registry = new OwnRegistry(child, dir, addr);
    for (let i = 0; i < 120; i++) {
      if (child.exitCode !== null) break;
      const ok = await fetch(`http://${addr}/v2/`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return registry;
      await new Promise((r) => setTimeout(r, 250));
    }
    await registry.stop();
    throw new Error(`docker-registry did not answer on ${addr}`);
  }

  /** Deletes a manifest by digest (what a registry garbage policy or an operator does). */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    const res = await fetch(`http://${this.addr}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
    if (res.status !== 202)
      throw new Error(`delete ${repository}@${digest}: ${res.status} ${await res.text()}`);
  }

  /** Stops the registry by its PID and removes its storage. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.pid !== undefined) {
      const exited = new Promise((r) => this.child.once('exit', r));
      process.kill(this.child.pid, 'SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
