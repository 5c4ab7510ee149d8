import { describe, expect, it } from 'vitest';
import { SlipwayError } from '../core/errors.js';
import { parseManifest } from '../manifest/load.js';
import type { ManifestInput } from '../manifest/schema.js';
import type { StagedTemplate, StagingReceipt } from '../stage/receipt.js';
import { argsDigest, type PurePlanInputs, parsePlan, plan, renderTags } from './plan.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const REF = 'a'.repeat(40);
const DIGEST = `sha256:${'d'.repeat(64)}`;
const CTX = `sha256:${'c'.repeat(64)}`;
const DF = `sha256:${'f'.repeat(64)}`;

const input: ManifestInput = {
  version: 1,
  templates: { 'platform-agent': { source: { git: 'https://git.example.com/t.git' }, ref: REF } },
  images: {
    'platform-agent': {
      dockerfile: 'dockerfiles/Dockerfile.platform-agent',
      repository: 'molecule-ai/molecule-platform-agent',
      base: 'platform',
      templates: ['platform-agent'],
      labels: { team: 'agents', 'org.opencontainers.image.revision': 'spoofed' },
    },
    platform: {
      dockerfile: 'dockerfiles/Dockerfile.platform',
      repository: 'molecule-ai/platform',
      buildArgs: { ROOT_IMAGE: 'debian:bookworm-slim' },
    },
    tools: { dockerfile: 'dockerfiles/Dockerfile.tools', repository: 'molecule-ai/tools' },
  },
  tags: { immutable: ['{env}-{sha}'], moving: ['{env}-latest'] },
  pins: { 'platform-agent': { image: 'platform-agent' } },
};
const manifest = parseManifest(JSON.stringify(input), 'manifest.json');

const receipt: StagingReceipt = {
  version: 1,
  stagingDir: '.tenant-bundle-deps/workspace-configs-templates',
  templates: {
    'platform-agent': {
      name: 'platform-agent',
      source: 'git https://git.example.com/t.git',
      ref: REF,
      digest: DIGEST,
      files: 4,
      bytes: 1800,
      dir: '.tenant-bundle-deps/workspace-configs-templates/platform-agent',
    },
  },
};

const inputs = (over: Partial<PurePlanInputs> = {}): PurePlanInputs => ({
  env: 'staging',
  sha: SHA,
  receipt,
  contextDigests: { platform: CTX, 'platform-agent': CTX, tools: CTX },
  source: 'https://github.com/molecule-ai/platform',
  ...over,
});

function thrown(fn: () => unknown): SlipwayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SlipwayError) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError');
}

describe('plan', () => {
  it('plans every image, bases first, with tags, labels, templates and pin moves', () => {
    const planned = plan(
      manifest,
      inputs({ images: ['platform-agent'], buildArgs: { EXTRA: '1' }, dockerfileDigests: { platform: DF } }),
    );
    expect(planned).toEqual({
      version: 1,
      env: 'staging',
      sha: SHA,
      source: 'https://github.com/molecule-ai/platform',
      images: [
        {
          name: 'platform',
          repository: 'molecule-ai/platform',
          dockerfile: 'dockerfiles/Dockerfile.platform',
          context: '.',
          contextDigest: CTX,
          base: null,
          buildArgs: { EXTRA: '1', ROOT_IMAGE: 'debian:bookworm-slim' },
          target: null,
          labels: {
            'dev.slipway.args-digest': argsDigest({ EXTRA: '1', ROOT_IMAGE: 'debian:bookworm-slim' }, null),
            'dev.slipway.context-digest': CTX,
            'dev.slipway.dockerfile-digest': DF,
            'dev.slipway.image': 'platform',
            'dev.slipway.templates': '',
            'org.opencontainers.image.revision': SHA,
            'org.opencontainers.image.source': 'https://github.com/molecule-ai/platform',
            'org.opencontainers.image.title': 'platform',
          },
          templates: [],
          immutableTags: [`staging-${SHA}`],
          movingTags: ['staging-latest'],
          smoke: null,
        },
        {
          name: 'platform-agent',
          repository: 'molecule-ai/molecule-platform-agent',
          dockerfile: 'dockerfiles/Dockerfile.platform-agent',
          context: '.',
          contextDigest: CTX,
          base: 'platform',
          buildArgs: { EXTRA: '1' },
          target: null,
          labels: {
            'dev.slipway.args-digest': argsDigest({ EXTRA: '1' }, null),
            'dev.slipway.context-digest': CTX,
            'dev.slipway.image': 'platform-agent',
            'dev.slipway.template.platform-agent.digest': DIGEST,
            'dev.slipway.template.platform-agent.ref': REF,
            'dev.slipway.templates': 'platform-agent',
            'org.opencontainers.image.revision': SHA,
            'org.opencontainers.image.source': 'https://github.com/molecule-ai/platform',
            'org.opencontainers.image.title': 'platform-agent',
            team: 'agents',
          },
          templates: [{ name: 'platform-agent', ref: REF, digest: DIGEST }],
          immutableTags: [`staging-${SHA}`],
          movingTags: ['staging-latest'],
          smoke: null,
        },
      ],
      pins: [{ runtime: 'platform-agent', image: 'platform-agent', tag: `staging-${SHA}` }],
    });
  });

  it('records the comparable inputs in labels: args and target change the args digest, order does not', () => {
    expect(argsDigest({ A: '1', B: '2' }, null)).toBe(argsDigest({ B: '2', A: '1' }, null));
    expect(argsDigest({ A: '1' }, null)).not.toBe(argsDigest({ A: '2' }, null));
    expect(argsDigest({ A: '1' }, null)).not.toBe(argsDigest({ A: '1' }, 'final'));
    const spoofed = plan(
      parseManifest(
        JSON.stringify({
          ...input,
          images: { tools: { ...input.images.tools, labels: { 'dev.slipway.context-digest': 'spoofed' } } },
          pins: {},
        }),
        'manifest.json',
      ),
      inputs(),
    );
    expect(spoofed.images[0]?.labels['dev.slipway.context-digest']).toBe(CTX);
  });

  it('orders all images by dependency and leaves pins of unplanned images out', () => {
    expect(plan(manifest, inputs()).images.map((i) => i.name)).toEqual([
      'platform',
      'tools',
      'platform-agent',
    ]);
    const tools = plan(manifest, inputs({ images: ['tools'] }));
    expect([tools.images.map((i) => i.name), tools.pins]).toEqual([['tools'], []]);
  });

  it('refuses a base cycle and an unknown image', () => {
    const cyclic = parseManifest(
      JSON.stringify({
        version: 1,
        images: {
          a: { dockerfile: 'a', repository: 'x/a', base: 'b' },
          b: { dockerfile: 'b', repository: 'x/b', base: 'a' },
        },
      }),
      'm.json',
    );
    const err = thrown(() => plan(cyclic, inputs({ contextDigests: { a: CTX, b: CTX } })));
    expect([err.code, err.message]).toEqual(['CONTRACT_VIOLATION', 'images form a base cycle: a -> b -> a']);
    expect(thrown(() => plan(manifest, inputs({ images: ['nope'] }))).code).toBe('USAGE');
  });

  it('is deterministic: same inputs give identical JSON whatever the key order', () => {
    const a = JSON.stringify(plan(manifest, inputs({ buildArgs: { B: '2', A: '1' } })));
    const b = JSON.stringify(
      plan(
        manifest,
        inputs({
          buildArgs: { A: '1', B: '2' },
          contextDigests: { tools: CTX, 'platform-agent': CTX, platform: CTX },
        }),
      ),
    );
    expect(a).toBe(b);
  });

  it('tells the user to stage when a consumed template is not staged or staged at another ref', () => {
    const missing = thrown(() => plan(manifest, inputs({ receipt: { ...receipt, templates: {} } })));
    expect([missing.code, missing.hint, missing.details]).toEqual([
      'PLAN_INVALID',
      'run `slipway stage` and plan again',
      [
        {
          at: 'images.platform-agent.templates[0]',
          message: 'template "platform-agent" has not been staged',
        },
      ],
    ]);
    const other = 'b'.repeat(40);
    const stale = thrown(() =>
      plan(
        manifest,
        inputs({
          receipt: {
            ...receipt,
            templates: {
              'platform-agent': { ...(receipt.templates['platform-agent'] as StagedTemplate), ref: other },
            },
          },
        }),
      ),
    );
    expect(stale.details).toEqual([
      {
        at: 'templates.platform-agent.ref',
        message: `template "platform-agent" was staged at ${other}, the manifest pins ${REF}`,
      },
    ]);
  });
});

describe('renderTags', () => {
  const tags = manifest.tags;
  it('renders the full or the short sha', () => {
    expect(renderTags(tags, { env: 'staging', sha: SHA })).toEqual({
      immutable: [`staging-${SHA}`],
      moving: ['staging-latest'],
    });
    expect(
      renderTags(
        { ...tags, immutable: ['{sha}', '{env}-{sha}'], sha: 'short', shortLength: 7 },
        { env: 'dev', sha: SHA },
      ),
    ).toEqual({ immutable: ['0123456', 'dev-0123456'], moving: ['dev-latest'] });
  });

  it('refuses a bad env, a short or uppercase sha, and a rendered tag Docker would reject', () => {
    const codes = [
      () => renderTags(tags, { env: 'Staging', sha: SHA }),
      () => renderTags(tags, { env: '-x', sha: SHA }),
      () => renderTags(tags, { env: 'dev', sha: SHA.slice(0, 12) }),
      () => renderTags(tags, { env: 'dev', sha: SHA.toUpperCase() }),
      () => renderTags(tags, { env: 'x'.repeat(100), sha: SHA }),
      () => renderTags({ ...tags, moving: ['{env}-{sha}'] }, { env: 'dev', sha: SHA }),
    ].map((f) => thrown(f).code);
    expect(codes).toEqual(['USAGE', 'USAGE', 'USAGE', 'USAGE', 'USAGE', 'USAGE']);
    expect(thrown(() => renderTags(tags, { env: 'x'.repeat(100), sha: SHA })).message).toBe(
      `tag template "{env}-{sha}" renders "${'x'.repeat(100)}-${SHA}", which is not a valid Docker tag`,
    );
  });
});

describe('parsePlan', () => {
  it('round-trips a plan and refuses another version or a malformed document', () => {
    const p = plan(manifest, inputs());
    expect(parsePlan(JSON.stringify(p), 'plan.json')).toEqual(p);
    const v2 = thrown(() => parsePlan(JSON.stringify({ ...p, version: 2 }), 'plan.json'));
    expect([v2.code, v2.message]).toEqual([
      'PLAN_INVALID',
      'plan.json: plan version 2 is not supported (expected 1)',
    ]);
    expect(thrown(() => parsePlan('{', 'plan.json')).code).toBe('PLAN_INVALID');
    const reordered = { ...p, images: [...p.images].reverse() };
    expect(thrown(() => parsePlan(JSON.stringify(reordered), 'plan.json')).message).toBe(
      'plan.json: image platform-agent comes before its base platform',
    );
  });
});
