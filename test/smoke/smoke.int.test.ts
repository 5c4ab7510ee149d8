import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerEngine } from '../../src/engine/docker-engine.js';
import { SmokeSpecSchema } from '../../src/manifest/schema.js';
import type { ExpectedTemplate } from '../../src/smoke/assertions.js';
import { dirTreeEntries } from '../../src/smoke/local-tree.js';
import { renderReport } from '../../src/smoke/report.js';
import { runSmoke, type SmokeOptions } from '../../src/smoke/run.js';
import { digestDirectory } from '../../src/sources/tree.js';
import { requireServices } from '../support/services.js';
import {
  buildFixture,
  engine,
  expectNothingLeft,
  referenceResults,
  referenceSpec,
  removeImages,
  templateDir,
  uniq,
} from './support.js';

const run = uniq();
const tag = (variant: string) => `slipway-smoke-test/agent:${variant}-${run}`;
const images: string[] = [];
let expected: Record<string, ExpectedTemplate>;

beforeAll(async () => {
  await requireServices(['docker', 'rootImage']);
  // The expected digest is computed by staging's own function over the fixture template.
  const staged = await digestDirectory(templateDir);
  expected = {
    'platform-agent': {
      digest: staged.digest,
      ref: 'f'.repeat(40),
      source: 'receipt',
      files: staged.files,
      entries: await dirTreeEntries(templateDir),
    },
  };
  for (const [variant, args] of Object.entries({
    good: {},
    'wrong-path': { FALLBACK: 'wrong-path' },
    noop: { FALLBACK: 'noop' },
    stub: { FALLBACK: 'stub' },
    refuse: { FALLBACK: 'refuse' },
    leaky: { FALLBACK: 'leaky' },
    silent: { AGENT: 'silent' },
    'ready-exit': { AGENT: 'ready-exit' },
  })) {
    images.push(await buildFixture(tag(variant), args));
  }
});

afterAll(async () => {
  await removeImages(images);
});

/** Smoke a fixture variant with the reference spec; asserts afterwards that nothing was left behind. */
async function smoke(variant: string, extra: Partial<SmokeOptions> = {}) {
  const imageName = `platform-agent-${variant}-${uniq()}`;
  const report = await runSmoke({
    engine,
    image: tag(variant),
    imageName,
    spec: referenceSpec(),
    templates: expected,
    ...extra,
  });
  await expectNothingLeft({ runId: report.evidence.runId });
  await expectNothingLeft({ imageName });
  return report;
}

function byName(report: Awaited<ReturnType<typeof smoke>>, name: string) {
  const a = report.assertions.find((x) => x.name === name);
  if (!a) throw new Error(`no assertion "${name}" in the report`);
  return a;
}

describe('runSmoke against real fixture images', () => {
  it('passes the correct image and lists every assertion', async () => {
    const r = await smoke('good');
    expect(r.failure).toBeUndefined();
    expect(r.passed).toBe(true);
    expect(r.skipped).toBe(false);
    expect(r.digest).toBeNull();
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults(),
    );
    expect(byName(r, '/configs matches template platform-agent').observed).toMatchObject({
      digest: expected['platform-agent']?.digest,
      files: expected['platform-agent']?.files,
      configYamlBytes: 344,
    });
    expect(r.evidence.readiness).toMatch(/^log line matching \/platform-agent ready\/ after \d+\.\ds$/);
    expect(r.evidence.listings['/configs']).toEqual([
      'config.yaml',
      'hooks/',
      'hooks/on-start.sh',
      'mcp_servers/',
      'mcp_servers/molecule.json',
      'prompts/',
      'prompts/default.md',
      'prompts/system.md',
    ]);
    // The fresh volume took the image directory's ownership: the agent (uid 1000) could fill it
    // (identity-fallback.sh runs with `set -e`, so a failed copy would have stopped the container).
    expect(r.evidence.logTail).toEqual([
      'platform-agent starting as agent, /configs has 4 entries',
      'platform-agent ready',
    ]);
    expect(Object.keys(r.evidence.volumes)).toEqual(['/configs']);
    expect(r.specDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('fails an image whose fallback wrote the template one directory too deep, naming the misplaced files', async () => {
    const r = await smoke('wrong-path');
    expect(r.passed).toBe(false);
    expect(r.failure?.code).toBe('assertion-failed');
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults([
        'config.yaml is the real identity',
        'prompts are present',
        'mcp_servers directory',
        '/configs matches template platform-agent',
      ]),
    );
    expect(byName(r, 'config.yaml is the real identity').message).toBe(
      '/configs/config.yaml does not exist in the running container',
    );
    const t = byName(r, '/configs matches template platform-agent').message;
    expect(t).toContain('does not match template platform-agent');
    expect(t).toContain('no config.yaml at its top level');
    expect(t).toContain('missing: config.yaml, hooks/on-start.sh, mcp_servers/molecule.json');
    expect(t).toContain('unexpected: platform-agent/config.yaml');
  });

  it('fails an image whose identity-fallback.sh exits 0 without populating /configs', async () => {
    const r = await smoke('noop');
    expect(r.passed).toBe(false);
    expect(r.failure?.code).toBe('assertion-failed');
    // The agent still reported itself ready: that is exactly what smoke must not trust.
    expect(r.evidence.readiness).not.toBeNull();
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults([
        'config.yaml is the real identity',
        'prompts are present',
        'mcp_servers directory',
        '/configs matches template platform-agent',
      ]),
    );
    expect(byName(r, '/configs matches template platform-agent').message).toContain('the directory is empty');
    expect(byName(r, '/configs matches template platform-agent').observed).toMatchObject({ files: 0 });
    expect(r.failure?.message).toMatch(/^4 of 6 assertions failed: config\.yaml is the real identity; /);
    // The report's "container log (tail)" shows what the container printed.
    expect(r.evidence.logTail).toEqual([
      'identity-fallback: no template source configured, skipping',
      'platform-agent starting as agent, /configs has 0 entries',
      'platform-agent ready',
    ]);
  });

  it('fails a 218-byte stub config.yaml by size and by content digest', async () => {
    const r = await smoke('stub');
    expect(r.passed).toBe(false);
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults(['config.yaml is the real identity', '/configs matches template platform-agent']),
    );
    expect(byName(r, 'config.yaml is the real identity').message).toBe(
      '/configs/config.yaml is 218 bytes, below the minimum of 219',
    );
    const t = byName(r, '/configs matches template platform-agent');
    expect(t.message).toContain('config.yaml is 218 bytes');
    expect(t.message).toContain('differing: config.yaml');
    expect(t.observed).toMatchObject({ configYamlBytes: 218, files: 5 });
    expect(t.expected).toMatchObject({ digest: expected['platform-agent']?.digest, from: 'receipt' });
  });

  it('fails an image that leaks a dotenv file into /configs', async () => {
    const r = await smoke('leaky');
    expect(r.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      referenceResults(['/configs matches template platform-agent', 'no credentials under /configs']),
    );
    expect(byName(r, 'no credentials under /configs').message).toBe(
      '/configs contains 1 forbidden entry: .env.local',
    );
  });

  it('fails a container that exits before it is ready, with its exit code and last log line', async () => {
    const r = await smoke('refuse');
    expect(r.passed).toBe(false);
    expect(r.assertions).toEqual([]);
    expect(r.failure).toEqual({
      code: 'exited-early',
      message:
        'the container exited with code 3 before it was ready (waiting for log line matching /platform-agent ready/); last log line: "identity-fallback: /configs is empty and no template is baked in; refusing to start"',
    });
    expect(r.evidence.exitCode).toBe(3);
    expect(r.evidence.logTail).toEqual([
      'identity-fallback: /configs is empty and no template is baked in; refusing to start',
    ]);
    const rendered = renderReport(r);
    const at = rendered.indexOf('  container log (tail):');
    expect(rendered.slice(at, at + 2)).toEqual([
      '  container log (tail):',
      '    | identity-fallback: /configs is empty and no template is baked in; refusing to start',
    ]);
  });

  it('classifies an image that prints its ready line and exits as exited-early, every time', async () => {
    // An agent that exits is not serving, whether the exit is seen while waiting for readiness
    // or after the assertions: the code must not depend on which poll noticed it.
    const outcomes: Array<{ code: string | undefined; exitCode: number | null; logTail: string[] }> = [];
    for (let i = 0; i < 4; i++) {
      const r = await smoke('ready-exit');
      outcomes.push({ code: r.failure?.code, exitCode: r.evidence.exitCode, logTail: r.evidence.logTail });
    }
    const expectedOutcome = {
      code: 'exited-early',
      exitCode: 0,
      logTail: ['platform-agent starting as agent', 'platform-agent ready'],
    };
    expect(outcomes).toEqual([expectedOutcome, expectedOutcome, expectedOutcome, expectedOutcome]);
  });

  it('fails when readiness is never reached within the timeout', async () => {
    const r = await smoke('silent', { timeoutSeconds: 2 });
    expect(r.passed).toBe(false);
    expect(r.assertions).toEqual([]);
    expect(r.failure).toEqual({
      code: 'readiness-timeout',
      message: 'the container was not ready within 2s: no log line matching /platform-agent ready/',
    });
    expect(r.evidence.logTail).toEqual([
      'platform-agent starting, waiting for a control plane that never answers',
    ]);
    expect(r.durationMs).toBeGreaterThanOrEqual(2000);
  });

  it('fails a spec with an empty assertion list without booting anything', async () => {
    const r = await smoke('good', { spec: referenceSpec((s) => ({ ...s, assertions: [] })) });
    expect(r.passed).toBe(false);
    expect(r.failure?.code).toBe('no-assertions');
    expect(r.failure?.message).toContain('has no assertions');
    expect(r.evidence.containerId).toBeNull();
  });

  it('fails an image without a spec; allowSkip makes it a reported skip, refused in CI', async () => {
    const failed = await smoke('good', { spec: undefined });
    expect({ passed: failed.passed, skipped: failed.skipped, code: failed.failure?.code }).toEqual({
      passed: false,
      skipped: false,
      code: 'no-spec',
    });
    expect(failed.failure?.message).toMatch(/has no smoke spec in the manifest/);

    const skipped = await smoke('good', { spec: undefined, allowSkip: true });
    expect({ passed: skipped.passed, skipped: skipped.skipped, code: skipped.failure?.code }).toEqual({
      passed: false,
      skipped: true,
      code: 'no-spec',
    });

    await expect(smoke('good', { spec: undefined, allowSkip: true, ci: true })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('refusing to allow a smoke skip in CI'),
    });
    // Refused in CI even when the image has a spec: --allow-skip in a pipeline is a misconfiguration.
    await expect(smoke('good', { allowSkip: true, ci: true })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('fails when the engine is unreachable', async () => {
    const r = await smoke('good', { engine: dockerEngine({ socketPath: `/tmp/no-engine-${uniq()}.sock` }) });
    expect(r.passed).toBe(false);
    expect(r.failure?.code).toBe('engine-unreachable');
    expect(r.failure?.message).toMatch(/^the Docker engine does not answer \(.*ENOENT.*\)/);
  });

  it('fails an entrypoint the engine cannot start, and removes the created container', async () => {
    const r = await smoke('good', {
      spec: referenceSpec((s) => ({
        ...s,
        boot: { ...s.boot, entrypoint: ['/usr/local/bin/no-such-entrypoint'] },
      })),
    });
    expect(r.failure?.code).toBe('start-failed');
    expect(r.failure?.message).toContain('no-such-entrypoint');
    expect(r.evidence.containerId).not.toBeNull();
  });

  it('fails a local image that does not exist', async () => {
    const r = await runSmoke({
      engine,
      image: `slipway-smoke-test/nothing:${uniq()}`,
      imageName: 'platform-agent',
      spec: referenceSpec(),
      templates: expected,
    });
    expect(r.failure?.code).toBe('image-not-found');
  });

  it('waits for a file or a command, and runs exec assertions as the image user', async () => {
    const withExec = (ready: unknown) =>
      SmokeSpecSchema.parse({
        ...referenceSpec(),
        ready,
        assertions: [
          { kind: 'exec', name: 'runs as agent', command: ['id', '-un'], stdout: '^agent$' },
          {
            kind: 'exec',
            name: 'hook is executable',
            command: ['/configs/hooks/on-start.sh'],
            stdout: 'identity loaded',
          },
          { kind: 'exec', name: 'wrong exit code', command: ['sh', '-c', 'exit 4'] },
          { kind: 'path', name: 'hook mode', path: '/configs/hooks/on-start.sh', type: 'file', mode: '0755' },
          {
            kind: 'path',
            name: 'prompt via symlink',
            path: '/configs/prompts/default.md',
            type: 'file',
            minSize: 10,
          },
        ],
      });
    const expectedResults = [
      { name: 'runs as agent', kind: 'exec', passed: true },
      { name: 'hook is executable', kind: 'exec', passed: true },
      { name: 'wrong exit code', kind: 'exec', passed: false },
      { name: 'hook mode', kind: 'path', passed: true },
      { name: 'prompt via symlink', kind: 'path', passed: true },
    ];
    const onFile = await smoke('good', { spec: withExec({ file: '/configs/config.yaml' }) });
    expect(onFile.evidence.readiness).toMatch(/^file \/configs\/config\.yaml to appear after/);
    expect(onFile.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      expectedResults,
    );
    expect(onFile.assertions[2]?.message).toBe('"sh -c exit 4" exited 4, expected 0');

    const onExec = await smoke('good', { spec: withExec({ exec: ['test', '-s', '/configs/config.yaml'] }) });
    expect(onExec.evidence.readiness).toMatch(/^"test -s \/configs\/config\.yaml" to exit 0 after/);
    expect(onExec.assertions.map(({ name, kind, passed }) => ({ name, kind, passed }))).toEqual(
      expectedResults,
    );
  });

  it('removes the container and volume when aborted, then reports the interruption', async () => {
    const imageName = `platform-agent-abort-${uniq()}`;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1500);
    await expect(
      runSmoke({
        engine,
        image: tag('silent'),
        imageName,
        spec: referenceSpec(),
        templates: expected,
        signal: controller.signal,
      }),
    ).rejects.toMatchObject({ code: 'INTERRUPTED' });
    await expectNothingLeft({ imageName });
  });
});
