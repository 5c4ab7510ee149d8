import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { checkRemoteCommits } from '../../src/sources/remote-check.js';
import { receiptPath, stageTemplates } from '../../src/stage/stage.js';
import { type ArchiveServer, startArchiveServer } from '../support/archive-server.js';
import {
  allBytes,
  bareClone,
  makeTemplateRepo,
  type TemplateRepo,
  tempDir,
  treeOfCommit,
  treeOnDisk,
  writeManifest,
} from './helpers.js';

const STAGED = '.tenant-bundle-deps/workspace-configs-templates';
const TOKEN = `gta_${Math.random().toString(36).slice(2)}ArchiveToken`;

async function caught(p: Promise<unknown>): Promise<SlipwayError> {
  try {
    await p;
  } catch (err) {
    if (isSlipwayError(err)) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError');
}

describe('staging GitHub and Gitea archives through their APIs', () => {
  let root: string;
  let repo: TemplateRepo;
  let server: ArchiveServer;
  let cacheDir: string;

  beforeAll(async () => {
    root = tempDir('stage-archive');
    repo = makeTemplateRepo(path.join(root, 'work'), 'agent');
    const bare = bareClone(repo.work, path.join(root, 'templates.git'));
    server = await startArchiveServer({ repos: { 'molecule-ai/templates': bare }, token: TOKEN });
    cacheDir = path.join(root, 'cache');
  });
  afterAll(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('stages the GitHub tarball of the pinned commit, stripped of its top directory, with subdir', async () => {
    const project = path.join(root, 'gh');
    const loaded = await writeManifest(project, {
      'platform-agent': {
        source: { github: 'molecule-ai/templates', apiUrl: server.url, subdir: 'agent' },
        ref: repo.first,
        required: ['config.yaml', 'identity-fallback.sh'],
      },
    });
    const sink = collectingSink();
    const receipt = await stageTemplates(loaded, { cacheDir, sink, env: { GITHUB_TOKEN: TOKEN } });
    expect(treeOnDisk(path.join(project, STAGED, 'platform-agent'))).toEqual(
      treeOfCommit(repo.work, repo.first, 'agent'),
    );
    expect(receipt.templates['platform-agent']).toMatchObject({
      source: `github molecule-ai/templates (${server.url})#agent`,
      ref: repo.first,
    });
    expect(server.requests.map((r) => `${r.status} ${r.path}`)).toContain(
      `302 /repos/molecule-ai/templates/tarball/${repo.first}`,
    );
    for (const surface of [
      allBytes(path.join(project, STAGED)),
      readFileSync(receiptPath(loaded), 'utf8'),
      JSON.stringify(sink.events),
      allBytes(cacheDir),
    ]) {
      expect(surface).not.toContain(TOKEN);
    }
  });

  it('stages the Gitea archive, and a second stage comes from the cache with the server gone', async () => {
    const own = await startArchiveServer({
      repos: { 'molecule-ai/templates': path.join(root, 'templates.git') },
      token: TOKEN,
    });
    const project = path.join(root, 'gitea');
    const loaded = await writeManifest(project, {
      agent: {
        source: { gitea: 'molecule-ai/templates', apiUrl: own.url, subdir: 'agent' },
        ref: repo.second,
      },
    });
    const env = { GITEA_TOKEN: TOKEN };
    const first = await stageTemplates(loaded, { cacheDir, env });
    expect(treeOnDisk(path.join(project, STAGED, 'agent'))).toEqual(
      treeOfCommit(repo.work, repo.second, 'agent'),
    );
    expect(own.requests.map((r) => `${r.status} ${r.path}`)).toEqual([
      `200 /repos/molecule-ai/templates/archive/${repo.second}.tar.gz`,
    ]);
    await own.close();
    const sink = collectingSink();
    expect(await stageTemplates(loaded, { cacheDir, env, sink })).toEqual(first);
    expect(
      sink.events.filter((e) => e.stage === 'source').map((e) => [e.kind, 'skipped' in e && e.skipped]),
    ).toEqual([['step-done', true]]);
    // Without the cache the server is needed, and it is gone: unreachable, exit 3.
    const err = await caught(stageTemplates(loaded, { cacheDir, env, noCache: true }));
    expect(err.code).toBe('GIT_HOST_UNREACHABLE');
    expect(err.exitCode).toBe(3);
  });

  it('a missing or wrong token is refused with a hint, never echoing the token', async () => {
    const project = path.join(root, 'denied');
    const loaded = await writeManifest(project, {
      agent: { source: { github: 'molecule-ai/templates', apiUrl: server.url }, ref: repo.first },
    });
    const wrong = `${TOKEN}-nope`;
    const err = await caught(stageTemplates(loaded, { noCache: true, env: { GITHUB_TOKEN: wrong } }));
    expect({ code: err.code, hint: err.hint }).toEqual({
      code: 'SOURCE_FETCH_FAILED',
      hint: 'set GITHUB_TOKEN to a token that can read the repository',
    });
    expect(JSON.stringify(err.toJSON()) + err.message).not.toContain(wrong);
    const none = await caught(stageTemplates(loaded, { noCache: true, env: {} }));
    expect(none.code).toBe('SOURCE_FETCH_FAILED');
  });

  it('checkRemoteCommits asks GitHub and Gitea whether each pinned commit exists', async () => {
    const project = path.join(root, 'remote');
    const missing = 'b'.repeat(40);
    const loaded = await writeManifest(project, {
      gh: { source: { github: 'molecule-ai/templates', apiUrl: server.url }, ref: repo.first },
      gt: { source: { gitea: 'molecule-ai/templates', apiUrl: server.url }, ref: missing },
      local: { source: { path: 'somewhere' } },
    });
    const env = { GITHUB_TOKEN: TOKEN, GITEA_TOKEN: TOKEN };
    const err = await caught(checkRemoteCommits(loaded, { env }));
    expect({ code: err.code, details: err.details }).toEqual({
      code: 'COMMIT_NOT_FOUND',
      details: [
        {
          at: 'templates.gt.ref',
          message: `commit ${missing} does not exist in gitea molecule-ai/templates (${server.url})`,
        },
      ],
    });
    const fixed = await writeManifest(project, {
      gh: { source: { github: 'molecule-ai/templates', apiUrl: server.url }, ref: repo.first },
      gt: { source: { gitea: 'molecule-ai/templates', apiUrl: server.url }, ref: repo.second },
    });
    expect(await checkRemoteCommits(fixed, { env })).toEqual([
      { template: 'gh', source: `github molecule-ai/templates (${server.url})`, ref: repo.first },
      { template: 'gt', source: `gitea molecule-ai/templates (${server.url})`, ref: repo.second },
    ]);
    expect(server.requests.map((r) => r.path)).toEqual(
      expect.arrayContaining([
        `/repos/molecule-ai/templates/commits/${repo.first}`,
        `/repos/molecule-ai/templates/git/commits/${missing}`,
      ]),
    );
  });
});
