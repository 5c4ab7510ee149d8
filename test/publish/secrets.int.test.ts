import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { openRegistry } from '../../src/publish/open.js';
import { pushImages } from '../../src/publish/push.js';
import { EcrTestServer } from '../support/ecr-server.js';
import { RegistryProxy } from '../support/registry-proxy.js';
import { registryAddr, requireServices } from '../support/services.js';
import { type BuiltPair, buildPair, builtOf, engine, planFor, removeImages, uid } from './fixtures.js';

const settings = { scanOnPush: true, tagMutability: 'MUTABLE' } as const;
let pair: BuiltPair;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  pair = await buildPair(`secrets-${uid()}`);
});
afterAll(async () => {
  await removeImages(pair.agent.localTag, pair.base.localTag);
});

/** Everything a caller can observe: events, the result, and a failure's message, hint and JSON. */
function observed(events: unknown[], ...rest: unknown[]): string {
  return JSON.stringify([
    events,
    ...rest.map((r) => (r instanceof Error ? [r.message, r.toString(), r] : r)),
  ]);
}

describe('credentials never leave the library', () => {
  it('a basic-auth password appears in no event, result or error, even when the push fails', async () => {
    const password = `basic-pw-${uid()}${uid()}`;
    const proxy = await RegistryProxy.start({
      upstream: registryAddr,
      auth: { mode: 'basic', username: 'robot', password },
    });
    try {
      const prefix = `slipway-test/${uid()}`;
      const sink = collectingSink();
      const registry = await openRegistry(`oci://${proxy.addr}/${prefix}`, {
        username: 'robot',
        password,
      });
      const result = await pushImages(planFor('molecule-ai'), builtOf(pair), registry, {
        engine,
        repositorySettings: settings,
        sink,
      });
      expect(result.images.every((i) => i.pushed.length === 2)).toBe(true);
      // The engine authenticated to the proxy itself: uploads went through with the credentials.
      expect(proxy.writes().filter((r) => r.status === 401)).toEqual([]);

      // A failing run: the registry answers 500 to every manifest PUT; the error echoes the request.
      proxy.fail({ method: 'PUT', path: /manifests/, status: 500, times: 100 });
      const failing = collectingSink();
      const err = await pushImages(planFor('molecule-ai'), builtOf(pair), registry, {
        engine,
        repositorySettings: settings,
        sink: failing,
      }).catch((e: unknown) => e);
      expect(isSlipwayError(err)).toBe(true);

      const text = observed([...sink.events, ...failing.events], result, err);
      expect(text).not.toContain(password);
      expect(text).not.toContain(Buffer.from(`robot:${password}`).toString('base64'));
    } finally {
      await proxy.close();
    }
  });

  it('the ECR token and its password appear in no event, result or error', async () => {
    const ecr = await EcrTestServer.start({ registry: registryAddr });
    try {
      const registry = await openRegistry('ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com', {
        env: {
          AWS_ENDPOINT_URL_ECR: ecr.endpoint,
          AWS_ACCESS_KEY_ID: 'AKIATEST',
          AWS_SECRET_ACCESS_KEY: 'secret-test-key',
        },
      });
      const sink = collectingSink();
      const root = `slipway-test/${uid()}`;
      const result = await pushImages(planFor(root), builtOf(pair), registry, {
        engine,
        repositorySettings: settings,
        createRepos: true,
        sink,
      });
      const missing = await pushImages(planFor(`slipway-test-${uid()}`), builtOf(pair), registry, {
        engine,
        repositorySettings: settings,
        sink,
      }).catch((e: unknown) => e);
      expect(isSlipwayError(missing, 'REPOSITORY_NOT_FOUND')).toBe(true);

      const text = observed(sink.events, result, missing);
      expect(text).not.toContain(ecr.password);
      expect(text).not.toContain(ecr.token);
      expect(text).not.toContain('secret-test-key');
    } finally {
      await ecr.close();
    }
  });
});
