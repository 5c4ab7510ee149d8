/**
 * Actions-native output, observed as a runner would: the CLI runs in-process with GITHUB_ACTIONS=true
 * and temporary $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY files; the files are read back in their
 * documented formats and the annotations and log groups are read from stderr.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/publish/open.js';
import { removeImages, uid } from '../publish/fixtures.js';
import { runCli } from '../support/cli.js';
import { tempProject } from '../support/project.js';
import { registryAddr, requireServices, rootImage } from '../support/services.js';

let dir: string;
const built: string[] = [];

/** Parses a $GITHUB_OUTPUT file: `name=value` lines and `name<<DELIM` … `DELIM` blocks. */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^<=]+)<<(.+)$/.exec(line);
    if (heredoc?.[1] && heredoc[2]) {
      const end = lines.indexOf(heredoc[2], i + 1);
      expect(end, `unterminated output ${heredoc[1]}`).toBeGreaterThan(i);
      out[heredoc[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

async function runInActions(args: string[]) {
  const output = path.join(dir, `output-${uid()}`);
  const summary = path.join(dir, `summary-${uid()}`);
  await writeFile(output, '');
  await writeFile(summary, '');
  const run = await runCli(['-m', path.join(dir, 'manifest.json'), ...args], {
    cwd: dir,
    env: {
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_WORKSPACE: dir,
      GITHUB_TOKEN: 'ghp_secretvalue_never_printed',
    },
  });
  return {
    ...run,
    outputs: parseOutputs(await readFile(output, 'utf8')),
    summary: await readFile(summary, 'utf8'),
  };
}

const manifest = (repo: string, ref?: string) =>
  ref === undefined
    ? `{ "version": 1, "images": { "platform": { "dockerfile": "Dockerfile", "repository": "${repo}" } } }\n`
    : `{
  "version": 1,
  "templates": {
    "t": {
      "source": { "git": "https://git.example.com/t.git" },
      "ref": "${ref}"
    }
  },
  "images": {
    "platform": {
      "dockerfile": "Dockerfile",
      "repository": "${repo}"
    }
  },
  "publish": { "registry": "oci://${registryAddr}" }
}
`;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-actions-'));
});

afterAll(async () => {
  await removeImages(...built);
  await rm(dir, { recursive: true, force: true });
});

describe('Actions output', () => {
  it('annotates a contract violation on its manifest line and summarises the failure', async () => {
    await writeFile(path.join(dir, 'manifest.json'), manifest('slipway-test/actions', 'main'));
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\n`);
    const r = await runInActions(['verify']);
    expect(r.code).toBe(1);
    // "ref" is on line 6 of the manifest above, column 7.
    expect(r.stderr).toMatch(
      /^::error title=slipway%3A CONTRACT_VIOLATION,file=manifest\.json,line=6,col=7::templates\.t\.ref: .*"main"/m,
    );
    expect(r.outputs.ok).toBe('false');
    expect(r.outputs['exit-code']).toBe('1');
    expect(r.outputs['failed-stage']).toBe('verify');
    expect(JSON.parse(r.outputs.result ?? '{}').error.code).toBe('CONTRACT_VIOLATION');
    expect(r.summary).toContain('<h2>❌ slipway verify: failed</h2>');
    expect(r.summary).toContain('<p><b>Left untouched:</b> nothing was pushed; no tag and no pin moved</p>');
    expect(r.stdout).toBe('');
  });

  it('annotates a COPY of a missing path on its Dockerfile line', async () => {
    await writeFile(path.join(dir, 'manifest.json'), manifest('slipway-test/actions', 'a'.repeat(40)));
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\nRUN true\nCOPY missing.txt /x\n`);
    const r = await runInActions(['verify']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^::error title=slipway%3A PREFLIGHT_FAILED,file=Dockerfile,line=3::Dockerfile:3: /m,
    );
    expect(r.outputs['failed-stage']).toBe('preflight');
    // Each stage that logged is one balanced, collapsible group.
    expect(r.stderr).toMatch(/^::group::slipway verify$/m);
    expect(r.stderr.match(/^::group::/gm)?.length).toBe(r.stderr.match(/^::endgroup::$/gm)?.length);
  });

  it('push: digests and tags per image and as JSON, a summary table, stdout unchanged, no secret', async () => {
    const repo = `slipway-test/actions-${uid()}`;
    await writeFile(path.join(dir, 'manifest.json'), manifest(repo));
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\nRUN echo ${uid()} > /marker\n`);
    expect((await runCli(['-m', path.join(dir, 'manifest.json'), 'stage'], { cwd: dir })).code).toBe(0);
    const r = await runInActions([
      'push',
      '--registry',
      `oci://${registryAddr}`,
      '--env',
      'ci',
      '--sha',
      'c'.repeat(40),
    ]);
    expect(r.stderr).not.toContain('::error');
    expect(r.code, r.stderr).toBe(0);
    const registry = await openRegistry(`oci://${registryAddr}`);
    const digest = await registry.resolve(repo, 'ci-latest');
    const id = await registry.configDigest(repo, digest ?? '');
    if (id) built.push(id);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.parse(r.outputs.digests ?? '{}')).toEqual({ platform: digest });
    expect(JSON.parse(r.outputs.tags ?? '{}').platform).toContain('ci-latest');
    expect(r.outputs['digest-platform']).toBe(digest);
    expect(r.outputs['tags-platform']?.split('\n')).toContain(`ci-${'c'.repeat(40)}`);
    expect(r.outputs.ok).toBe('true');
    expect(JSON.parse(r.outputs.result ?? '{}').images[0].digest).toBe(digest);
    expect(r.summary).toContain('<h2>✅ slipway push: ok</h2>');
    expect(r.summary).toContain(`<td><code>${registryAddr}/${repo}@${digest}</code></td>`);
    expect(r.summary).toContain('<code>ci-latest</code>');
    expect(r.stderr).toMatch(/^::group::slipway build$/m);
    expect(r.stderr).toMatch(/^::group::slipway push$/m);
    // stdout is still the plain result lines (crane-style), nothing Actions-specific.
    expect(r.stdout).not.toContain('::');
    expect(r.stdout).toContain(`@${digest}`);
    expect(`${r.stdout}${r.stderr}${r.summary}${JSON.stringify(r.outputs)}`).not.toContain('ghp_secretvalue');
  });
});

describe('Actions output of status', () => {
  it('puts the status table and its flags in the job summary, and --check fails the step', async () => {
    const repo = `slipway-test/actions-status-${uid()}`;
    await writeFile(path.join(dir, 'manifest.json'), manifest(repo));
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${rootImage}\n`);
    const r = await runInActions([
      'status',
      '--registry',
      `oci://${registryAddr}`,
      '--env',
      'ci',
      '--pins',
      `file:${path.join(dir, 'status-pins.json')}`,
      '--check',
    ]);
    // Never pushed: EMPTY, and --check makes the step fail.
    expect(r.code, r.stderr).toBe(1);
    expect(r.outputs.ok).toBe('false');
    expect(r.summary).toContain('### Slipway status: ci 1 flag');
    expect(r.summary).toMatch(/^\| .*IMAGE.* \|$/im);
    expect(r.summary).toContain('- **EMPTY** `platform`');
    expect(JSON.parse(r.outputs.result ?? '{}').flags[0].kind).toBe('EMPTY');
  });
});

describe('Actions output of release', () => {
  it('summarises images, every smoke assertion and the pin moves; outputs the smoke verdict', async () => {
    const project = tempProject(`slipway-test/actions-release-${uid()}`);
    try {
      project.writeManifest();
      const output = path.join(project.dir, 'output');
      const summary = path.join(project.dir, 'summary');
      await writeFile(output, '');
      await writeFile(summary, '');
      const r = await runCli(
        [
          'release',
          '--registry',
          `oci://${registryAddr}`,
          '--env',
          'ci',
          '--sha',
          'd'.repeat(40),
          '--pins',
          `file:${path.join(project.dir, 'pins.json')}`,
          '--promote',
          '--by',
          'ci-bot',
        ],
        {
          cwd: project.dir,
          env: {
            GITHUB_ACTIONS: 'true',
            GITHUB_OUTPUT: output,
            GITHUB_STEP_SUMMARY: summary,
            PATH: process.env.PATH,
          },
        },
      );
      expect(r.code, r.stderr).toBe(0);
      const outputs = parseOutputs(await readFile(output, 'utf8'));
      const md = await readFile(summary, 'utf8');
      expect(outputs.smoke).toBe('passed');
      expect(Object.keys(JSON.parse(outputs.digests ?? '{}'))).toEqual(['platform', 'platform-agent']);
      expect(md).toContain('<h2>✅ slipway release: ok</h2>');
      expect(md).toContain('<h3>Smoke platform-agent: passed</h3>');
      expect(md).toContain(
        '<td>/configs is the pinned platform-agent template</td><td>template</td><td>✅ pass</td>',
      );
      expect(md).toMatch(
        /<td>platform-agent<\/td><td>moved<\/td><td><code>[^<]*molecule-platform-agent@sha256:[0-9a-f]{64}<\/code><\/td>/,
      );
      const ids = Object.values(JSON.parse(outputs.digests ?? '{}')) as string[];
      const registry = await openRegistry(`oci://${registryAddr}`);
      for (const [i, d] of ids.entries()) {
        const repoName = i === 0 ? 'platform' : 'molecule-platform-agent';
        const id = await registry.configDigest(`${project.prefix}/${repoName}`, d);
        if (id) built.push(id);
      }
    } finally {
      project.remove();
    }
  });
});
