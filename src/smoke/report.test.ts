import { describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import { SmokeSpecSchema } from '../manifest/schema.js';
import { BOOT_TESTCASE, toJUnitXml } from './junit.js';
import {
  assertionName,
  canonicalJson,
  renderReport,
  type SmokeReport,
  specDigest,
  summarize,
} from './report.js';

const evidence = {
  runId: 'abc123',
  imageId: 'sha256:1111',
  containerId: 'c0ffee',
  volumes: { '/configs': 'slipway-smoke-abc123-0' },
  logTail: ['platform-agent ready'],
  exitCode: null,
  readiness: 'log line matching /platform-agent ready/ after 0.4s',
  listings: {},
};
const D = `sha256:${'a'.repeat(64)}`;

const failed: SmokeReport = {
  image: `127.0.0.1:5000/molecule-ai/molecule-platform-agent@${D}`,
  imageName: 'platform-agent',
  digest: D,
  specDigest: `sha256:${'b'.repeat(64)}`,
  passed: false,
  skipped: false,
  startedAt: '2026-01-02T03:04:05.000Z',
  durationMs: 1500,
  assertions: [
    {
      name: 'config.yaml',
      kind: 'path',
      passed: false,
      expected: { type: 'file', minSize: 219 },
      observed: { type: 'file', size: 218, mode: '0644' },
      message: '/configs/config.yaml is 218 bytes, below the minimum of 219',
    },
    {
      name: 'no secrets',
      kind: 'absent',
      passed: true,
      observed: [],
      message: 'none of 8 entries under /configs matches .git',
    },
  ],
  failure: { code: 'assertion-failed', message: '1 of 2 assertions failed: config.yaml' },
  evidence,
};

describe('specDigest', () => {
  it('ignores key order and undefined values, and changes with the content', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }, 'x'] })).toBe('{"a":[{"d":2},"x"],"b":1}');
    const one = SmokeSpecSchema.parse({
      ready: { log: 'ready' },
      assertions: [{ kind: 'path', path: '/configs' }],
    });
    const same = SmokeSpecSchema.parse({
      assertions: [{ path: '/configs', kind: 'path' }],
      ready: { log: 'ready' },
    });
    const other = SmokeSpecSchema.parse({
      ready: { log: 'ready!' },
      assertions: [{ kind: 'path', path: '/configs' }],
    });
    expect(specDigest(one)).toBe(specDigest(same));
    expect(specDigest(one)).not.toBe(specDigest(other));
    expect(specDigest(undefined)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('assertionName', () => {
  it('derives a readable name from what the assertion checks', () => {
    const spec = SmokeSpecSchema.parse({
      ready: { log: 'x' },
      assertions: [
        { kind: 'path', path: '/configs/config.yaml', type: 'file', minSize: 219 },
        { kind: 'path', path: '/opt/molecule-mcp-server' },
        { kind: 'path', path: '/bin/agent', mode: '0755' },
        { kind: 'template', path: '/configs', template: 'platform-agent' },
        { kind: 'absent', under: '/configs', patterns: ['.git', '.env*'] },
        { kind: 'exec', command: ['agent', '--check'] },
        { kind: 'exec', name: 'own name', command: ['true'] },
      ],
    });
    expect(spec.assertions.map(assertionName)).toEqual([
      '/configs/config.yaml is a file of at least 219 bytes',
      '/opt/molecule-mcp-server is present',
      '/bin/agent is present with mode 0755',
      '/configs matches template platform-agent',
      'no .git, .env* under /configs',
      'exec agent --check',
      'own name',
    ]);
  });
});

describe('renderReport', () => {
  it('prints a verdict, PASS/FAIL per assertion with observed values, and the log tail on failure', () => {
    expect(renderReport(failed)).toEqual([
      'smoke platform-agent: FAILED (1.5s)',
      `  image:  127.0.0.1:5000/molecule-ai/molecule-platform-agent@${D}`,
      `  digest: ${D}`,
      `  spec:   sha256:${'b'.repeat(64)}`,
      '  ready:  log line matching /platform-agent ready/ after 0.4s',
      '  FAIL config.yaml: /configs/config.yaml is 218 bytes, below the minimum of 219',
      '       expected: {"type":"file","minSize":219}',
      '       observed: {"type":"file","size":218,"mode":"0644"}',
      '  PASS no secrets: none of 8 entries under /configs matches .git',
      '  container log (tail):',
      '    | platform-agent ready',
      '  failed assertion-failed: 1 of 2 assertions failed: config.yaml (1/2 assertions passed)',
    ]);
  });

  it('shows a failure before any assertion with its code', () => {
    const early: SmokeReport = {
      ...failed,
      assertions: [],
      failure: { code: 'exited-early', message: 'the container exited with code 3 before it was ready' },
      evidence: { ...evidence, readiness: null, logTail: ['refusing to start'] },
    };
    expect(renderReport(early).slice(4)).toEqual([
      '  FAIL [exited-early] the container exited with code 3 before it was ready',
      '  container log (tail):',
      '    | refusing to start',
      '  failed exited-early: the container exited with code 3 before it was ready',
    ]);
    expect(
      summarize({ ...failed, passed: true, failure: undefined, assertions: failed.assertions.slice(1) }),
    ).toBe('1/1 assertions passed');
  });
});

type Suite = {
  '@tests': string;
  '@failures': string;
  '@skipped': string;
  testcase: unknown;
};
const parse = (xml: string) =>
  (create(xml).end({ format: 'object' }) as { testsuites: { testsuite: Suite } }).testsuites.testsuite;

describe('toJUnitXml', () => {
  it('has one testcase per assertion, with a failure element on the failed ones', () => {
    const suite = parse(toJUnitXml(failed));
    expect({ tests: suite['@tests'], failures: suite['@failures'], skipped: suite['@skipped'] }).toEqual({
      tests: '2',
      failures: '1',
      skipped: '0',
    });
    expect(suite.testcase).toEqual([
      {
        '@classname': 'slipway.smoke.platform-agent',
        '@name': 'config.yaml',
        '@time': '0',
        failure: {
          '@message': '/configs/config.yaml is 218 bytes, below the minimum of 219',
          '@type': 'path',
          '#': 'expected: {"type":"file","minSize":219}\nobserved: {"type":"file","size":218,"mode":"0644"}',
        },
      },
      { '@classname': 'slipway.smoke.platform-agent', '@name': 'no secrets', '@time': '0' },
    ]);
  });

  it('turns a failure before the assertions into one failing testcase, and a skip into a skipped one', () => {
    const early = parse(
      toJUnitXml({
        ...failed,
        assertions: [],
        failure: { code: 'readiness-timeout', message: 'not ready within 2s' },
      }),
    );
    expect(early.testcase).toMatchObject({
      '@name': BOOT_TESTCASE,
      failure: { '@message': 'not ready within 2s', '@type': 'readiness-timeout' },
    });
    expect(early['@failures']).toBe('1');
    const skipped = parse(
      toJUnitXml({
        ...failed,
        assertions: [],
        skipped: true,
        failure: { code: 'no-spec', message: 'no smoke spec' },
      }),
    );
    expect({ failures: skipped['@failures'], skipped: skipped['@skipped'] }).toEqual({
      failures: '0',
      skipped: '1',
    });
    expect(skipped.testcase).toMatchObject({
      '@name': BOOT_TESTCASE,
      skipped: { '@message': 'no smoke spec' },
    });
  });

  it('survives control characters in container logs', () => {
    const xml = toJUnitXml({
      ...failed,
      evidence: { ...evidence, logTail: ['\u001b[31mred\u001b[0m \u0000'] },
    });
    expect(xml).toContain('<system-out>red \uFFFD</system-out>');
    expect([...xml].filter((c) => (c.codePointAt(0) ?? 0) < 0x20 && !'\t\n\r'.includes(c))).toEqual([]);
  });
});
