import { describe, expect, it } from 'vitest';
import { SlipwayError } from '../core/errors.js';
import { parseDuration } from './duration.js';
import { type EvaluateOptions, evaluateStatus } from './flags.js';
import { statusMarkdown, statusTable } from './render.js';
import type { CurrentInputs, ImageFacts, LatestImage } from './types.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const REV = 'a'.repeat(40);
const NOW = new Date('2025-06-01T12:00:00Z');
const passed = { passed: true, at: '2025-06-01T10:00:00Z', message: 'smoke passed' };

const baseInputs: CurrentInputs = {
  dockerfileDigest: d('1'),
  contextDigest: d('2'),
  argsDigest: d('3'),
  templates: [],
  base: null,
};
const agentInputs: CurrentInputs = {
  ...baseInputs,
  templates: [{ name: 'agent', ref: 'b'.repeat(40), digest: d('4') }],
  base: 'platform',
};

function latest(name: string, inputs: CurrentInputs, over: Partial<LatestImage> = {}): LatestImage {
  const labels: Record<string, string> = {
    'dev.slipway.image': name,
    'dev.slipway.dockerfile-digest': inputs.dockerfileDigest ?? '',
    'dev.slipway.context-digest': inputs.contextDigest ?? '',
    'dev.slipway.args-digest': inputs.argsDigest,
    'dev.slipway.templates': inputs.templates.map((t) => t.name).join(','),
    'org.opencontainers.image.revision': REV,
  };
  for (const t of inputs.templates) {
    labels[`dev.slipway.template.${t.name}.ref`] = t.ref ?? '';
    labels[`dev.slipway.template.${t.name}.digest`] = t.digest ?? '';
  }
  if (inputs.base) labels['org.opencontainers.image.base.digest'] = d('c');
  return {
    tag: 'staging-latest',
    digest: name === 'platform' ? d('a') : d('b'),
    configDigest: name === 'platform' ? d('c') : d('e'),
    created: '2025-06-01T09:00:00Z',
    pushedAt: null,
    revision: REV,
    releaseTag: `staging-${REV}`,
    releaseDigest: name === 'platform' ? d('a') : d('b'),
    labels,
    smoke: passed,
    ...over,
  };
}

const repo = (n: string) => ({
  name: `127.0.0.1:5000/${n}`,
  exists: true,
  imageCount: 1,
  newestPush: '2025-06-01T09:00:00Z',
  newestPushSource: 'created' as const,
});
const PINNED = {
  image: `127.0.0.1:5000/agent@${d('b')}`,
  digest: d('b'),
  updatedAt: '2025-06-01T10:00:00Z',
  updatedBy: 'ci',
  forced: false,
};
const PIN = { runtime: 'agent', pinned: PINNED, resolves: true, smoke: passed, equalsLatest: true };

function facts(over: { base?: Partial<ImageFacts>; agent?: Partial<ImageFacts> } = {}): ImageFacts[] {
  return [
    {
      name: 'platform',
      repository: repo('platform'),
      latest: latest('platform', baseInputs),
      current: baseInputs,
      pins: [],
      ...over.base,
    },
    {
      name: 'agent',
      repository: repo('agent'),
      latest: latest('agent', agentInputs),
      current: agentInputs,
      pins: [PIN],
      ...over.agent,
    },
  ];
}

const options: EvaluateOptions = {
  registry: 'oci://127.0.0.1:5000',
  env: 'staging',
  tag: 'staging-latest',
  pinStore: 'file:pins.json',
  maxAgeSeconds: null,
  now: NOW,
};
const kinds = (f: ImageFacts[], o = options) =>
  evaluateStatus(f, o).flags.map((x) => `${x.kind} ${x.image} ${x.subject}`);

describe('evaluateStatus', () => {
  it('raises nothing right after a release', () => {
    const report = evaluateStatus(facts(), options);
    expect(report).toMatchObject({ ok: true, flags: [] });
    expect(report.images.map((i) => i.changes)).toEqual([[], []]);
    expect(statusTable(report).at(-1)).toContain('no flags');
    expect(statusMarkdown(report)).toContain('| platform |');
  });

  it('EMPTY: missing repository, no image, no moving tag; the dependent of an empty base is STALE', () => {
    const missing = { ...repo('platform'), exists: false, imageCount: null };
    expect(kinds(facts({ base: { repository: missing, latest: null } }))).toEqual([
      'EMPTY platform repository',
      'STALE agent staging-latest',
    ]);
    const none = { ...repo('platform'), imageCount: 0 };
    expect(kinds(facts({ base: { repository: none, latest: null } }))[0]).toBe('EMPTY platform repository');
    expect(kinds(facts({ base: { latest: null } }))[0]).toBe('EMPTY platform staging-latest');
  });

  it('STALE: a Dockerfile change stales the base and its dependent; a template pin change only the consumer', () => {
    const changed = { ...baseInputs, dockerfileDigest: d('9') };
    const report = evaluateStatus(facts({ base: { current: changed } }), options);
    expect(report.flags.map((f) => `${f.kind} ${f.image}`)).toEqual(['STALE platform', 'STALE agent']);
    expect(report.flags[0]?.reason).toContain('the Dockerfile changed');
    expect(report.flags[1]?.reason).toContain('its base platform is stale');

    const repinned = { ...agentInputs, templates: [{ name: 'agent', ref: 'f'.repeat(40), digest: null }] };
    const r2 = evaluateStatus(facts({ agent: { current: repinned } }), options);
    expect(r2.flags.map((f) => `${f.kind} ${f.image}`)).toEqual(['STALE agent']);
    expect(r2.flags[0]?.reason).toContain(`template agent is pinned at ${'f'.repeat(12)}`);
  });

  it('STALE: built on another base image, or older than --max-age', () => {
    const agent = latest('agent', agentInputs);
    const onOld = { ...agent, labels: { ...agent.labels, 'org.opencontainers.image.base.digest': d('0') } };
    expect(kinds(facts({ agent: { latest: onOld } }))).toEqual(['STALE agent staging-latest']);
    expect(kinds(facts(), { ...options, maxAgeSeconds: 3600 })).toEqual([
      'STALE platform staging-latest',
      'STALE agent staging-latest',
    ]);
  });

  it('DRIFT: a moving tag moved by hand, and a pin on another digest; DANGLING; UNVERIFIED after --force', () => {
    const moved = latest('agent', agentInputs, { digest: d('7'), releaseDigest: d('b') });
    expect(kinds(facts({ agent: { latest: moved } }))).toEqual([
      'DRIFT agent staging-latest',
      'DRIFT agent pin agent',
    ]);
    const foreign = latest('agent', agentInputs, { labels: {}, revision: null, releaseTag: null });
    expect(evaluateStatus(facts({ agent: { latest: foreign } }), options).flags[0]?.reason).toContain(
      'carries no dev.slipway.image label',
    );

    const dangling = {
      ...PIN,
      pinned: { ...PINNED, digest: d('8'), forced: true },
      resolves: false,
      smoke: { passed: false, at: null, message: 'no smoke record' },
      equalsLatest: false,
    };
    const report = evaluateStatus(facts({ agent: { pins: [dangling] } }), options);
    expect(report.flags.map((f) => f.kind)).toEqual(['DANGLING', 'DRIFT', 'UNVERIFIED']);
    expect(report.flags[2]?.reason).toContain('promoted with --force by ci');
  });
});

describe('parseDuration', () => {
  it('reads units and sums, refuses anything else', () => {
    expect(parseDuration('30d')).toBe(30 * 86_400);
    expect(parseDuration('1d12h')).toBe(86_400 + 12 * 3600);
    expect(parseDuration('2w')).toBe(14 * 86_400);
    for (const bad of ['30', 'd', '3x', '0s', '1d garbage']) {
      expect(() => parseDuration(bad)).toThrow(SlipwayError);
    }
  });
});
