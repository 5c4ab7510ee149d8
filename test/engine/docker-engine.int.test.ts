// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally
/**
 * The image engine port's dockerode implementation against the real engine and the local
 * registry: build, inspect, tag, push, pull back by digest, and every container call smoke makes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageRef } from '../../src/core/image-ref.js';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { PullError } from '../../src/engine/image-engine.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';

const run = randomBytes(4).toString('hex');
const engine = dockerEngine();
// Only to look at what the engine holds afterwards, independently of the code under test.
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const repository = `${registryAddr}/slipway-test/engine-${run}`;
const localTag = `slipway-test/engine-${run}:built`;
const label = `dev.slipway.test-engine=${run}`;
const tags: string[] = [];

function contextOf(files: Record<string, string>): Readable {
  const tar = pack();
  for (const [name, body] of Object.entries(files)) tar.entry({ name }, body);
  tar.finalize();
  return Readable.from(tar);
}

function buildRequest(dockerfile: string, tag: string) {
  return {
    subject: `engine-${run}`,
    context: contextOf({ Dockerfile: dockerfile, 'hello.txt': `hello ${run}\n` }),
    dockerfile: 'Dockerfile',
    tag,
    buildArgs: { ROOT_IMAGE: rootImage },
    labels: { 'dev.slipway.test-engine': run },
    target: null,
    noCache: false,
    buildkit: false,
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

let imageId: string;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  const lines: string[] = [];
  imageId = await engine.build(
    buildRequest('ARG ROOT_IMAGE\nFROM ${ROOT_IMAGE}\nCOPY hello.txt /hello.txt\n', localTag),
    (l) => lines.push(l),
  );
  tags.push(localTag);
  expect(lines).toContain('Step 3/4 : COPY hello.txt /hello.txt');
});

afterAll(async () => {
  for (const t of tags) {
    await docker
      .getImage(t)
      .remove({ force: true })
      .catch(() => {});
  }
});

describe('dockerEngine images', () => {
  it('answers a ping, and an engine that is not there is ENGINE_UNREACHABLE naming the socket', async () => {
    await expect(engine.ping()).resolves.toBeUndefined();
    const nowhere = `/tmp/slipway-no-engine-${run}.sock`;
    const err = await rejection(dockerEngine({ socketPath: nowhere }).ping());
    expect(err).toMatchObject({
      code: 'ENGINE_UNREACHABLE',
      message: expect.stringContaining(`unix://${nowhere}`),
    });
  });

  it('builds and inspects an image; a missing one is null', async () => {
    const info = await engine.inspectImage(localTag);
    expect(info).toMatchObject({ id: imageId, repoTags: [localTag], repoDigests: [] });
    expect(info?.labels['dev.slipway.test-engine']).toBe(run);
    expect(info?.layers.length).toBeGreaterThan(1);
    expect(await engine.inspectImage(`slipway-test/engine-${run}:missing`)).toBeNull();
  });

  it('fails a build whose step fails with BUILD_FAILED naming the step and its output', async () => {
    const tag = `slipway-test/engine-${run}:broken`;
    const err = await rejection(
      engine.build(
        buildRequest('ARG ROOT_IMAGE\nFROM ${ROOT_IMAGE}\nRUN echo "about to fail" && exit 7\n', tag),
        () => {},
      ),
    );
    expect(err).toMatchObject({ code: 'BUILD_FAILED', resource: `engine-${run}` });
    expect((err as Error).message).toContain('failed at Step 3/4 : RUN echo "about to fail" && exit 7');
    expect((err as Error).message).toContain('about to fail');
    expect(await engine.inspectImage(tag)).toBeNull();
  });

  it('tags, pushes (returning the digest the registry serves), pulls back by digest, and untags', async () => {
    const target = ImageRef.parse(`${repository}:v1`);
    await engine.tag(imageId, target);
    tags.push(target.toString());
    const lines: string[] = [];
    const { digest } = await engine.push(target, {}, (l) => lines.push(l));
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines).toContain(`digest ${digest}`);
    const res = await fetch(`http://${registryAddr}/v2/slipway-test/engine-${run}/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.headers.get('docker-content-digest')).toBe(digest);

    // Untag (the image keeps its local tag), then pull it back by digest: the same image ID.
    await engine.removeTag(target.toString());
    expect((await engine.inspectImage(imageId))?.repoTags).toEqual([localTag]);
    const byDigest = ImageRef.parse(`${repository}@${digest}`);
    await engine.pull(byDigest, {});
    tags.push(byDigest.toString());
    const pulled = await engine.inspectImage(byDigest.toString());
    expect(pulled?.id).toBe(imageId);
    expect(pulled?.repoDigests).toContain(`${repository}@${digest}`);
  });

  it('fails a push to a registry that is not there with PUSH_FAILED from the stream events', async () => {
    const target = ImageRef.parse(`127.0.0.1:1/slipway-test/engine-${run}:v1`);
    await engine.tag(imageId, target);
    tags.push(target.toString());
    const err = await rejection(engine.push(target, {}, () => {}));
    expect(err).toMatchObject({ code: 'PUSH_FAILED', resource: target.toString() });
    expect((err as Error).message).toContain('connection refused');
  });

  it('classifies failed pulls: a missing manifest is pull-failed, a closed port registry-unreachable', async () => {
    const missing = await rejection(engine.pull(ImageRef.parse(`${repository}:no-such-tag`), {}));
    expect(missing).toBeInstanceOf(PullError);
    expect((missing as PullError).kind).toBe('pull-failed');
    const closed = await rejection(
      engine.pull(
        ImageRef.parse(`127.0.0.1:1/slipway-test/engine-${run}:v1`),
        { password: `secret-${run}` },
        {
          redact: (t) => t.replaceAll(`secret-${run}`, '***'),
        },
      ),
    );
    expect((closed as PullError).kind).toBe('registry-unreachable');
    expect((closed as Error).message).not.toContain(`secret-${run}`);
  });
});

describe('dockerEngine containers', () => {
  it('creates, starts, execs, stats, archives, logs and removes a container with its volume', async () => {
    const volume = `slipway-test-engine-${run}`;
    await engine.createVolume(volume, { 'dev.slipway.test-engine': run });
    const id = await engine.createContainer({
      name: `slipway-test-engine-${run}`,
      image: imageId,
      labels: { 'dev.slipway.test-engine': run },
      env: { GREETING: `hi-${run}` },
      entrypoint: ['/bin/sh', '-c'],
      command: [
        'echo "$GREETING from $(id -un)"; mkdir -p /data/d; echo x > /data/d/f; ln -s f /data/d/l; exec sleep 300',
      ],
      user: 'root',
      volumes: { '/data': volume },
    });
    try {
      await engine.startContainer(id);
      await expect.poll(() => engine.logs(id), { timeout: 10_000 }).toContain(`hi-${run} from root`);
      await expect.poll(() => engine.statPath(id, '/data/d/l'), { timeout: 10_000 }).not.toBeNull();
      expect(await engine.inspectContainer(id)).toEqual({ running: true, exitCode: null, oomKilled: false });

      expect(
        await engine.exec(id, ['sh', '-c', 'cat /data/d/f; echo err >&2; exit 3'], { timeoutMs: 10_000 }),
      ).toEqual({
        exitCode: 3,
        stdout: 'x\n',
        stderr: 'err\n',
      });
      expect((await engine.exec(id, ['id', '-un'], { user: 'nobody', timeoutMs: 10_000 })).stdout).toBe(
        'nobody\n',
      );
      await expect(engine.exec(id, ['sleep', '30'], { timeoutMs: 500 })).rejects.toMatchObject({
        code: 'ENGINE_FAILED',
        message: '"sleep 30" did not finish within 1s',
      });

      expect(await engine.statPath(id, '/data/d/f')).toMatchObject({ name: 'f', type: 'file', size: 2 });
      expect(await engine.statPath(id, '/data/d/l')).toMatchObject({
        type: 'symlink',
        linkTarget: '/data/d/f',
      });
      expect(await engine.statPath(id, '/data/none')).toBeNull();
      const entries = await engine.archive(id, '/data');
      expect(entries?.map((e) => [e.path, e.type])).toEqual([
        ['d', 'directory'],
        ['d/f', 'file'],
        ['d/l', 'symlink'],
      ]);
      expect(await engine.archive(id, '/data/none')).toBeNull();
    } finally {
      await engine.removeContainer(id, { volumes: true });
      await engine.removeVolume(volume);
    }
    // Gone, and removing again is not an error.
    await engine.removeContainer(id);
    await engine.removeVolume(volume);
    const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
    const volumes = (await docker.listVolumes({ filters: { label: [label] } })).Volumes ?? [];
    expect({ containers: containers.length, volumes: volumes.map((v) => v.Name) }).toEqual({
      containers: 0,
      volumes: [],
    });
  });

  it('reports a container that exited with its exit code', async () => {
    const id = await engine.createContainer({
      name: `slipway-test-engine-exit-${run}`,
      image: imageId,
      labels: { 'dev.slipway.test-engine': run },
      env: {},
      entrypoint: ['/bin/sh', '-c', 'echo bye; exit 5'],
      volumes: {},
    });
    try {
      await engine.startContainer(id);
      await expect
        .poll(async () => (await engine.inspectContainer(id)).running, { timeout: 10_000 })
        .toBe(false);
      expect(await engine.inspectContainer(id)).toEqual({ running: false, exitCode: 5, oomKilled: false });
      expect(await engine.logs(id)).toBe('bye\n');
    } finally {
      await engine.removeContainer(id);
    }
    expect(await docker.listContainers({ all: true, filters: { label: [label] } })).toEqual([]);
  });
});
