/**
 * The engine's time limits against the real engine: a loopback TCP proxy in front of its unix
 * socket forwards everything, except that it stops forwarding the answer to chosen requests
 * (after a first progress event, or before any byte), as a hung engine or registry would.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { ImageRef } from '../../src/core/image-ref.js';
import { LABELS } from '../../src/core/labels.js';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { PullError } from '../../src/engine/image-engine.js';
import type { Plan } from '../../src/plan/types.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { buildImage, engine, planFor, removeImages, uid } from '../publish/fixtures.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';

const SOCKET = '/var/run/docker.sock';
const settings = { scanOnPush: false, tagMutability: 'MUTABLE' } as const;
const run = uid();
const tags: string[] = [];

/** How the proxy holds the answer to a request whose request line matches `request`. */
interface Stall {
  readonly request: RegExp;
  /** `progress`: forward the answer up to its first progress event, then nothing; `silent`: nothing at all. */
  readonly after: 'progress' | 'silent';
}

/** A loopback TCP proxy to the engine's unix socket that stalls the answers named by `stall`. */
class EngineProxy {
  /** Request lines whose answers were held. */
  readonly held: string[] = [];
  /** Held connections the client closed (it gave up and aborted). */
  abandoned = 0;
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(stall: Stall): Promise<EngineProxy> {
    let proxy: EngineProxy | undefined;
    const server = net.createServer((client) => proxy?.connect(client, stall));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new EngineProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  private connect(client: net.Socket, stall: Stall): void {
    const upstream = net.connect(SOCKET);
    this.sockets.add(client).add(upstream);
    let holding = false;
    let armed = false;
    let answer = '';
    client.on('data', (chunk: Buffer) => {
      const line = chunk.toString('latin1').split('\r\n')[0] ?? '';
      if (/^[A-Z]+ \S+ HTTP\/1\.1$/.test(line) && stall.request.test(line)) {
        this.held.push(line);
        armed = true;
        holding = stall.after === 'silent';
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding) return;
      client.write(chunk);
      if (!armed) return;
      answer += chunk.toString('latin1');
      if (answer.includes('"status"')) holding = true;
    });
    client.on('close', () => {
      if (armed) this.abandoned++;
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** An engine through `proxy` with short limits. */
function stallingEngine(proxy: EngineProxy) {
  return dockerEngine(
    { protocol: 'http', host: '127.0.0.1', port: proxy.port },
    { timeouts: { idleMs: 2_000, callMs: 2_000, totalMs: 60_000 } },
  );
}

async function imageWith(marker: string): Promise<string> {
  const tag = `slipway-test/engine-timeouts:${run}-${marker}`;
  tags.push(tag);
  return buildImage(
    `FROM ${rootImage}\nRUN echo "${run} ${marker}" > /marker\nLABEL ${LABELS.inputDigest}=sha256:${marker.padEnd(64, '0')}\n`,
    tag,
  );
}

function onePlan(): Plan {
  const plan = planFor('molecule-ai');
  const first = plan.images[0];
  if (!first) throw new Error('planFor returned no image');
  return { ...plan, images: [{ ...first, repository: 'molecule-ai/stall' }] };
}

let first: string;
let second: string;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  first = await imageWith('a');
  second = await imageWith('b');
});

afterAll(async () => {
  await removeImages(...tags);
});

describe('engine time limits', () => {
  it('a push whose progress stalls mid-way fails within the idle limit, names the image and the step, and leaves moving tags alone', async () => {
    const prefix = `slipway-test/${uid()}`;
    const registry = await openRegistry(`oci://${registryAddr}/${prefix}`);
    const before = await pushImages(onePlan(), { platform: { id: first } }, registry, {
      engine,
      repositorySettings: settings,
    });
    const latest = before.images[0]?.digest;
    expect(latest).toMatch(/^sha256:/);

    const proxy = await EngineProxy.start({ request: /^POST \S*\/images\/\S+\/push\?/, after: 'progress' });
    try {
      const plan = onePlan();
      const t0 = Date.now();
      const err = (await pushImages(plan, { platform: { id: second } }, registry, {
        engine: stallingEngine(proxy),
        repositorySettings: settings,
      }).catch((e: unknown) => e)) as SlipwayError;
      const elapsed = Date.now() - t0;

      expect(isSlipwayError(err, 'PUSH_FAILED'), String(err)).toBe(true);
      expect(err.exitCode).toBe(1);
      const target = `${registryAddr}/${prefix}/molecule-ai/stall:staging-${plan.sha}`;
      expect(err.message).toContain(
        `push ${target}: the engine reported no progress for 2s; the push was aborted`,
      );
      expect(err.message).toContain('no moving tag was changed');
      expect(elapsed).toBeGreaterThanOrEqual(2_000);
      expect(elapsed).toBeLessThan(15_000);
      expect(proxy.held).toHaveLength(1);
      // The request was aborted: the engine's connection was closed by the client.
      await expect.poll(() => proxy.abandoned).toBeGreaterThanOrEqual(1);
      expect(await registry.resolve('molecule-ai/stall', 'staging-latest')).toBe(latest);
    } finally {
      await proxy.close();
    }
  });

  it('a pull whose progress stalls fails within the idle limit naming the image', async () => {
    const proxy = await EngineProxy.start({ request: /^POST \S*\/images\/create\?/, after: 'progress' });
    try {
      // Something pullable from the local registry; the proxy holds the engine's answer to the pull.
      const pushed = await openRegistry(`oci://${registryAddr}/slipway-test/${uid()}`);
      const built = await pushImages(onePlan(), { platform: { id: first } }, pushed, {
        engine,
        repositorySettings: settings,
        holdMovingTags: true,
      });
      const image = built.images[0];
      const target = ImageRef.parse(`${image?.repository}@${image?.digest}`);
      tags.push(target.toString());
      const t0 = Date.now();
      const err = await stallingEngine(proxy)
        .pull(target, {})
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PullError);
      expect((err as PullError).message).toBe(
        `pull ${target}: the engine reported no progress for 2s; aborted`,
      );
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(proxy.held).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('an engine call that gets no answer fails within the call limit as an unreachable engine', async () => {
    const proxy = await EngineProxy.start({ request: /^GET \S*\/images\/\S+\/json/, after: 'silent' });
    try {
      const t0 = Date.now();
      const err = (await stallingEngine(proxy)
        .inspectImage(first)
        .catch((e: unknown) => e)) as SlipwayError;
      expect(isSlipwayError(err, 'ENGINE_UNREACHABLE'), String(err)).toBe(true);
      expect(err.message).toBe(
        `inspect ${first}: the Docker engine at tcp://127.0.0.1:${proxy.port} did not answer within 2s`,
      );
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(proxy.held).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});
