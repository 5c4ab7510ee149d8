import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { checkRemoteCommits } from '../../src/sources/remote-check.js';
import { receiptPath, stageTemplates } from '../../src/stage/stage.js';
import { type GitServer, startGitServer } from '../support/git-server.js';
import {
  allBytes,
  bareClone,
  git,
  makeTemplateRepo,
  type TemplateRepo,
  tempDir,
  treeOfCommit,
  treeOnDisk,
  writeManifest,
} from './helpers.js';

const STAGED = '.tenant-bundle-deps/workspace-configs-templates';
const TOKEN = `ghs_${Math.random().toString(36).slice(2)}SlipwayHttpToken`;
const BASIC = Buffer.from(`x-access-token:${TOKEN}`).toString('base64');

async function caught(p: Promise<unknown>): Promise<SlipwayError> {
  try {
    await p;
  } catch (err) {
    if (isSlipwayError(err)) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError');
}

/** Every place a token could leak to, as one string. */
function leakSurface(err: SlipwayError): string {
  return JSON.stringify({ m: err.message, h: err.hint, r: err.resource, d: err.details, j: err.toJSON() });
}

describe('staging from git over authenticated HTTP', () => {
  let root: string;
  let repo: TemplateRepo;
  let server: GitServer;
  let v0: GitServer;
  let cacheDir: string;

  beforeAll(async () => {
    root = tempDir('stage-http');
    repo = makeTemplateRepo(path.join(root, 'work'));
    const repos = path.join(root, 'srv');
    bareClone(repo.work, path.join(repos, 'agent.git'));
    // Without allowReachableSHA1InWant a protocol-v0 server refuses a SHA: the fallback path.
    git(path.join(repos, 'agent.git'), 'config', 'uploadpack.allowReachableSHA1InWant', 'false');
    server = await startGitServer({ root: repos, token: TOKEN });
    v0 = await startGitServer({ root: repos, token: TOKEN, protocolV2: false });
    cacheDir = path.join(root, 'cache');
  });
  afterAll(async () => {
    await server?.close();
    await v0?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('fetches with the token in a header only: not in the tree, receipt, cache, events or output', async () => {
    const project = path.join(root, 'p1');
    const loaded = await writeManifest(project, {
      'platform-agent': {
        source: { git: `${server.url}agent.git` },
        ref: repo.first,
        required: ['config.yaml'],
      },
    });
    const sink = collectingSink();
    const receipt = await stageTemplates(loaded, { cacheDir, sink, env: { SLIPWAY_GIT_TOKEN: TOKEN } });
    expect(treeOnDisk(path.join(project, STAGED, 'platform-agent'))).toEqual(
      treeOfCommit(repo.work, repo.first),
    );
    expect(server.authHeaders.length).toBeGreaterThan(0);
    expect(new Set(server.authHeaders)).toEqual(new Set([`Basic ${BASIC}`]));
    for (const surface of [
      allBytes(path.join(project, STAGED)),
      readFileSync(receiptPath(loaded), 'utf8'),
      JSON.stringify(receipt),
      JSON.stringify(sink.events),
      allBytes(cacheDir),
    ]) {
      expect(surface).not.toContain(TOKEN);
      expect(surface).not.toContain(BASIC);
    }
  });

  it('falls back to a full fetch when the server refuses to serve a SHA (protocol v0)', async () => {
    const project = path.join(root, 'p2');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `${v0.url}agent.git` }, ref: repo.first },
    });
    const before = v0.requests.length;
    await stageTemplates(loaded, { noCache: true, env: { SLIPWAY_GIT_TOKEN: TOKEN } });
    expect(treeOnDisk(path.join(project, STAGED, 'agent'))).toEqual(treeOfCommit(repo.work, repo.first));
    // Two ref advertisements: the shallow SHA fetch the client gave up on, then the full fetch.
    const adverts = v0.requests.slice(before).filter((r) => r.path.endsWith('/info/refs'));
    expect(adverts.length).toBe(2);
  });

  it('a wrong token fails clearly without showing the token', async () => {
    const wrong = `${TOKEN}-wrong`;
    const project = path.join(root, 'p3');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `${server.url}agent.git` }, ref: repo.first },
    });
    const sink = collectingSink();
    const err = await caught(
      stageTemplates(loaded, { noCache: true, sink, env: { SLIPWAY_GIT_TOKEN: wrong } }),
    );
    expect({ code: err.code, resource: err.resource }).toEqual({
      code: 'SOURCE_FETCH_FAILED',
      resource: `git ${server.url}agent.git`,
    });
    expect(err.message).toContain('refused access');
    expect(err.hint).toContain('SLIPWAY_GIT_TOKEN');
    const surface = leakSurface(err) + JSON.stringify(sink.events);
    expect(surface).not.toContain(wrong);
    expect(surface).not.toContain(Buffer.from(`x-access-token:${wrong}`).toString('base64'));
  });

  it('a missing commit is COMMIT_NOT_FOUND, and verify --remote names it', async () => {
    const missing = 'a'.repeat(40);
    const project = path.join(root, 'p4');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `${server.url}agent.git` }, ref: missing },
    });
    const env = { SLIPWAY_GIT_TOKEN: TOKEN };
    const err = await caught(stageTemplates(loaded, { noCache: true, env }));
    expect(err.code).toBe('COMMIT_NOT_FOUND');
    expect(leakSurface(err)).not.toContain(TOKEN);

    const remote = await caught(checkRemoteCommits(loaded, { env }));
    expect({ code: remote.code, details: remote.details }).toEqual({
      code: 'COMMIT_NOT_FOUND',
      details: [
        {
          at: 'templates.agent.ref',
          message: `commit ${missing} does not exist in git ${server.url}agent.git`,
        },
      ],
    });
    const ok = await writeManifest(project, {
      agent: { source: { git: `${server.url}agent.git` }, ref: repo.second },
    });
    expect(await checkRemoteCommits(ok, { env })).toEqual([
      { template: 'agent', source: `git ${server.url}agent.git`, ref: repo.second },
    ]);
  });

  it('the CLI never prints the token, even in NDJSON logs and --json errors', async () => {
    const project = path.join(root, 'p5');
    await writeManifest(project, { agent: { source: { git: `${server.url}agent.git` }, ref: repo.first } });
    const out: string[] = [];
    const run = (env: Record<string, string>, ...args: string[]) =>
      main(['--json', '--log-format', 'ndjson', ...args], {
        stdout: (s) => out.push(s),
        stderr: (s) => out.push(s),
        env,
        cwd: project,
      });
    expect(await run({ SLIPWAY_GIT_TOKEN: TOKEN }, 'stage', '--no-cache')).toBe(0);
    expect(await run({ SLIPWAY_GIT_TOKEN: `${TOKEN}x` }, 'stage', '--no-cache')).toBe(1);
    const all = out.join('');
    expect(all).toContain('"ok": false');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(BASIC);
  });
});
