/** A PostgreSQL host that accepts the connection and never answers must not hold a command. */
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { makeTempDir } from '../support/temp.js';

let server: net.Server;
let port: number;
let dir: string;
const sockets = new Set<net.Socket>();
let accepted = 0;

beforeAll(async () => {
  dir = makeTempDir('pg-stall');
  // Accepts every connection and never writes a byte: a hung database or proxy.
  server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a stalled PostgreSQL pin store', () => {
  it('pins list --timeout 1s exits 3 within seconds, naming the store but not the password', async () => {
    const started = Date.now();
    const out = await runCli(
      ['--timeout', '1s', 'pins', '--store', `postgres://slipway:s3cret-pw@127.0.0.1:${port}/x`, 'list'],
      { cwd: dir },
    );
    const elapsed = Date.now() - started;
    expect(out.code, out.stderr).toBe(3);
    // It connected, waited out the 1 s limit, and gave up: not refused, not held.
    expect(accepted).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(6_000);
    expect(out.stderr).toMatch(
      new RegExp(`error: .*database postgres://127\\.0\\.0\\.1:${port}/x unreachable`),
    );
    expect(out.stderr).not.toContain('s3cret-pw');
  });
});
