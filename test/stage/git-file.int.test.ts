import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { isSlipwayError, type SlipwayError } from '../../src/core/errors.js';
import { collectingSink } from '../../src/core/events.js';
import { TemplateCache } from '../../src/stage/cache.js';
import { readReceipt, receiptPath, stageTemplates } from '../../src/stage/stage.js';
import {
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

async function caught(p: Promise<unknown>): Promise<SlipwayError> {
  try {
    await p;
  } catch (err) {
    if (isSlipwayError(err)) return err;
    throw err;
  }
  throw new Error('expected a SlipwayError');
}

describe('staging from git over file://', () => {
  let root: string;
  let repo: TemplateRepo;
  let bare: string;
  let cacheDir: string;

  beforeAll(() => {
    root = tempDir('stage-file');
    repo = makeTemplateRepo(path.join(root, 'work'));
    bare = bareClone(repo.work, path.join(root, 'agent.git'));
    cacheDir = path.join(root, 'cache');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('stages exactly the pinned commit: its tree byte for byte, without .git or later commits', async () => {
    const project = path.join(root, 'p1');
    const loaded = await writeManifest(project, {
      'platform-agent': {
        source: { git: `file://${bare}` },
        ref: repo.first,
        required: ['config.yaml', 'prompts', 'identity-fallback.sh'],
      },
    });
    const sink = collectingSink();
    const receipt = await stageTemplates(loaded, { cacheDir, sink, env: {} });
    const dir = path.join(project, STAGED, 'platform-agent');
    expect(treeOnDisk(dir)).toEqual(treeOfCommit(bare, repo.first));
    expect(existsSync(path.join(dir, 'prompts/added-later.md'))).toBe(false);
    expect(readFileSync(path.join(dir, 'config.yaml'), 'utf8')).toBe('name: platform-agent\nmodel: large\n');
    const entry = receipt.templates['platform-agent'];
    expect(entry).toMatchObject({
      name: 'platform-agent',
      source: `git file://${bare}`,
      ref: repo.first,
      files: 6,
      dir: `${STAGED}/platform-agent`,
    });
    expect(entry?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await readReceipt(loaded)).toEqual(receipt);
    expect(JSON.parse(readFileSync(receiptPath(loaded), 'utf8'))).toEqual(receipt);
    expect(sink.events.filter((e) => e.kind === 'step-done').map((e) => `${e.stage} ${e.subject}`)).toEqual([
      'source platform-agent',
      'stage platform-agent',
    ]);
  });

  it('stages the same tree and digest without the shell tools: git alone, the extractor writing the files', async () => {
    // A PATH with git but no tar or tee: only the in-process extractor can write the files.
    const bin = path.join(root, 'bin-without-tar');
    mkdirSync(bin);
    symlinkSync(
      execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim(),
      path.join(bin, 'git'),
    );
    const stage = async (name: string, env: NodeJS.ProcessEnv) => {
      const project = path.join(root, name);
      const loaded = await writeManifest(project, {
        agent: { source: { git: `file://${bare}` }, ref: repo.first, required: ['config.yaml'] },
      });
      const receipt = await stageTemplates(loaded, { noCache: true, env });
      return { receipt, tree: treeOnDisk(path.join(project, STAGED, 'agent')) };
    };
    const teed = await stage('p-teed', {});
    const alone = await stage('p-alone', { PATH: bin });
    expect(alone.tree).toEqual(treeOfCommit(bare, repo.first));
    expect(alone.tree).toEqual(teed.tree);
    expect(alone.receipt.templates.agent?.digest).toBe(teed.receipt.templates.agent?.digest);
    // A cache filled without the tools holds the tree too (linked by cp or in-process).
    const cached = path.join(root, 'cache-alone');
    const project = path.join(root, 'p-alone-cached');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${bare}` }, ref: repo.first },
    });
    await stageTemplates(loaded, { cacheDir: cached, env: { PATH: bin } });
    const key = { identity: `file://${bare}`, ref: repo.first, subdir: '' };
    expect(treeOnDisk(path.join(cached, TemplateCache.keyHash(key), 'tree'))).toEqual(teed.tree);
  });

  it('re-stages from the cache without touching git, even when the repository is gone', async () => {
    const project = path.join(root, 'p2');
    const gone = bareClone(repo.work, path.join(root, 'will-vanish.git'));
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${gone}` }, ref: repo.first },
    });
    const first = await stageTemplates(loaded, { cacheDir, env: {} });
    rmSync(gone, { recursive: true, force: true });
    const sink = collectingSink();
    const again = await stageTemplates(loaded, { cacheDir, sink, env: {} });
    expect(again).toEqual(first);
    expect(sink.events.find((e) => e.stage === 'source' && e.kind === 'step-done')).toMatchObject({
      skipped: true,
      message: expect.stringContaining('from cache'),
    });
    expect(sink.events.some((e) => e.kind === 'step-start' && e.stage === 'source')).toBe(false);
    // Bypassing the cache needs the repository, which is gone: proof the cache did the work above.
    const err = await caught(stageTemplates(loaded, { cacheDir, noCache: true, env: {} }));
    expect(err.code).toBe('SOURCE_FETCH_FAILED');
  });

  it('fetches again when a cached tree was modified, and leaves no lock behind', async () => {
    const project = path.join(root, 'p9');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${bare}` }, ref: repo.first },
    });
    const first = await stageTemplates(loaded, { cacheDir, env: {} });
    const key = { identity: `file://${bare}`, ref: repo.first, subdir: '' };
    writeFileSync(path.join(cacheDir, TemplateCache.keyHash(key), 'tree', 'config.yaml'), 'stub\n');
    const sink = collectingSink();
    expect(await stageTemplates(loaded, { cacheDir, sink, env: {} })).toEqual(first);
    expect(sink.events.filter((e) => e.stage === 'source').map((e) => e.kind)).toEqual([
      'log',
      'step-start',
      'step-done',
    ]);
    expect(readFileSync(path.join(cacheDir, TemplateCache.keyHash(key), 'tree', 'config.yaml'), 'utf8')).toBe(
      'name: platform-agent\nmodel: large\n',
    );
    expect(existsSync(`${path.join(project, STAGED)}.lock`)).toBe(false);
  });

  it('a cold stage writes each file once and caches it by hard link; an edit through the staged link is caught', async () => {
    const project = path.join(root, 'p10');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${bare}` }, ref: repo.first },
    });
    const first = await stageTemplates(loaded, { cacheDir, env: {} });
    const key = { identity: `file://${bare}`, ref: repo.first, subdir: '' };
    const cached = path.join(cacheDir, TemplateCache.keyHash(key), 'tree', 'config.yaml');
    const staged = path.join(project, STAGED, 'agent', 'config.yaml');
    expect(statSync(staged).ino).toBe(statSync(cached).ino);
    // Someone edits the staged file in place: the cache entry no longer holds the pinned tree.
    writeFileSync(staged, 'edited\n');
    const sink = collectingSink();
    expect(await stageTemplates(loaded, { cacheDir, sink, env: {} })).toEqual(first);
    expect(
      sink.events.some((e) => e.kind === 'log' && e.message === 'cached tree was modified; fetching again'),
    ).toBe(true);
    expect(readFileSync(staged, 'utf8')).toBe('name: platform-agent\nmodel: large\n');
    expect(readFileSync(cached, 'utf8')).toBe('name: platform-agent\nmodel: large\n');
  });

  it('refuses a branch name as ref before any fetch', async () => {
    const project = path.join(root, 'p3');
    const loaded = await writeManifest(project, {
      agent: { source: { git: path.join(root, 'no-such-repo.git') }, ref: 'main' },
    });
    const sink = collectingSink();
    const err = await caught(stageTemplates(loaded, { cacheDir, sink, env: {} }));
    expect({ code: err.code, at: err.details.map((d) => d.at) }).toEqual({
      code: 'CONTRACT_VIOLATION',
      at: ['templates.agent.ref'],
    });
    expect(err.message).toContain('a branch or other name, which moves');
    expect(sink.events).toEqual([]);
    expect(existsSync(path.join(project, STAGED))).toBe(false);
  });

  it('a missing required file fails and leaves the previous staged tree and receipt untouched', async () => {
    const project = path.join(root, 'p4');
    const good = await writeManifest(project, {
      agent: { source: { git: bare }, ref: repo.first, required: ['config.yaml'] },
      other: { source: { git: bare }, ref: repo.second },
    });
    await stageTemplates(good, { cacheDir, env: {} });
    const receiptBefore = readFileSync(receiptPath(good), 'utf8');
    const treeBefore = treeOnDisk(path.join(project, STAGED));

    // Move both pins: "other" would stage fine, "agent" lacks a required file at the new commit.
    const bad = await writeManifest(project, {
      agent: { source: { git: bare }, ref: repo.second, required: ['config.yaml', 'prompts/missing.md'] },
      other: { source: { git: bare }, ref: repo.first },
    });
    const err = await caught(stageTemplates(bad, { cacheDir, env: {} }));
    expect({ code: err.code, resource: err.resource }).toEqual({
      code: 'REQUIRED_FILE_MISSING',
      resource: 'agent:prompts/missing.md',
    });
    expect(err.message).toContain('template "agent"');
    expect(err.hint).toContain('prompts/missing.md');
    expect(readFileSync(receiptPath(good), 'utf8')).toBe(receiptBefore);
    expect(treeOnDisk(path.join(project, STAGED))).toEqual(treeBefore);
  });

  it('reports a commit the repository does not have', async () => {
    const project = path.join(root, 'p5');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${bare}` }, ref: 'f'.repeat(40) },
    });
    const err = await caught(stageTemplates(loaded, { cacheDir, env: {} }));
    expect({ code: err.code, resource: err.resource }).toEqual({
      code: 'COMMIT_NOT_FOUND',
      resource: `git file://${bare}`,
    });
    expect(err.message).toContain('f'.repeat(40));
  });

  it('refuses an annotated tag object pinned in place of its commit, naming the commit', async () => {
    const tagged = bareClone(repo.work, path.join(root, 'tagged.git'));
    git(
      tagged,
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@example.com',
      'tag',
      '-a',
      'v1',
      '-m',
      'v1',
      repo.first,
    );
    const tagObject = git(tagged, 'rev-parse', 'v1').trim();
    const project = path.join(root, 'p-tag');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${tagged}` }, ref: tagObject },
    });
    const err = await caught(stageTemplates(loaded, { cacheDir, env: {} }));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'COMMIT_NOT_FOUND',
      message: `template "agent": ${tagObject} in file://${tagged} is not a commit (it resolves to commit ${repo.first})`,
    });
    expect(existsSync(path.join(project, STAGED, 'agent'))).toBe(false);
  });

  it('refuses a subdir the pinned commit does not have', async () => {
    const project = path.join(root, 'p-subdir');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${bare}`, subdir: 'no/such/dir' }, ref: repo.first },
    });
    const err = await caught(stageTemplates(loaded, { cacheDir, env: {} }));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'SOURCE_FETCH_FAILED',
      message: `template "agent": git file://${bare}#no/such/dir has no directory "no/such/dir" at commit ${repo.first}`,
    });
  });

  it('stages the commit byte for byte from a local repository whose own config would rewrite line endings', async () => {
    // Read in place, `git archive` would apply this repository's core.autocrlf (LF -> CRLF):
    // such a repository is fetched into a scratch one instead, like a remote.
    const crlf = bareClone(repo.work, path.join(root, 'crlf.git'));
    git(crlf, 'config', 'core.autocrlf', 'true');
    const project = path.join(root, 'p-crlf');
    const loaded = await writeManifest(project, {
      agent: { source: { git: `file://${crlf}` }, ref: repo.first },
    });
    await stageTemplates(loaded, { cacheDir, env: {} });
    const dir = path.join(project, STAGED, 'agent');
    expect(treeOnDisk(dir)).toEqual(treeOfCommit(crlf, repo.first));
    expect(readFileSync(path.join(dir, 'config.yaml'), 'utf8')).toBe('name: platform-agent\nmodel: large\n');
  });

  it('stages a subdir of the non-bare repository holding the manifest ({"git": "."}), and removes dropped templates', async () => {
    const work = path.join(root, 'self');
    const self = makeTemplateRepo(work, 'templates/platform-agent');
    const loaded = await writeManifest(work, {
      'platform-agent': { source: { git: '.', subdir: 'templates/platform-agent' }, ref: self.first },
      old: { source: { git: '.', subdir: 'templates/platform-agent' }, ref: self.second },
    });
    const receipt = await stageTemplates(loaded, { cacheDir, env: {} });
    expect(receipt.templates['platform-agent']?.source).toBe('git .#templates/platform-agent');
    expect(treeOnDisk(path.join(work, STAGED, 'platform-agent'))).toEqual(
      treeOfCommit(work, self.first, 'templates/platform-agent'),
    );
    const fewer = await writeManifest(work, {
      'platform-agent': { source: { git: '.', subdir: 'templates/platform-agent' }, ref: self.first },
    });
    const after = await stageTemplates(fewer, { cacheDir, env: {} });
    expect(Object.keys(after.templates)).toEqual(['platform-agent']);
    expect(existsSync(path.join(work, STAGED, 'old'))).toBe(false);
    expect(git(work, 'status', '--porcelain', '--', 'templates')).toBe('');
  });

  it('--only restages one template and keeps the others in the receipt', async () => {
    const project = path.join(root, 'p6');
    const loaded = await writeManifest(project, {
      a: { source: { git: bare }, ref: repo.first },
      b: { source: { git: bare }, ref: repo.first },
    });
    const all = await stageTemplates(loaded, { cacheDir, env: {} });
    const moved = await writeManifest(project, {
      a: { source: { git: bare }, ref: repo.second },
      b: { source: { git: bare }, ref: repo.second },
    });
    const one = await stageTemplates(moved, { cacheDir, env: {}, only: ['a'] });
    expect(one.templates.b).toEqual(all.templates.b);
    expect(one.templates.a?.ref).toBe(repo.second);
    const err = await caught(stageTemplates(moved, { cacheDir, env: {}, only: ['nope'] }));
    expect(err.code).toBe('USAGE');
  });

  it('the CLI stages and prints the receipt; verify --remote fails closed on a missing commit', async () => {
    const project = path.join(root, 'p7');
    await writeManifest(project, { agent: { source: { git: bare }, ref: repo.first } });
    writeFileSync(path.join(project, 'Dockerfile'), 'FROM scratch\n');
    const out: string[] = [];
    const errs: string[] = [];
    const io = {
      stdout: (s: string) => out.push(s),
      stderr: (s: string) => errs.push(s),
      env: {},
      cwd: project,
    };
    expect(await main(['--json', 'stage', '--cache-dir', cacheDir], io)).toBe(0);
    const printed = JSON.parse(out.join(''));
    expect(printed.templates.agent.ref).toBe(repo.first);

    out.length = 0;
    expect(await main(['stage', '--cache-dir', cacheDir], io)).toBe(0);
    expect(out.join('')).toMatch(
      new RegExp(`^TEMPLATE\\s+REF\\s+DIGEST\\s+FILES\\s+BYTES\\nagent\\s+${repo.first.slice(0, 12)}\\s`),
    );

    expect(await main(['verify', '--remote'], io)).toBe(0);
    await writeManifest(project, { agent: { source: { git: bare }, ref: 'e'.repeat(40) } });
    errs.length = 0;
    expect(await main(['verify', '--remote'], io)).toBe(1);
    expect(errs.join('')).toContain(`agent: commit ${'e'.repeat(40)} does not exist in git ${bare}`);
  });

  it('verify --remote exits 3 when the git host does not answer', async () => {
    const project = path.join(root, 'p8');
    await writeManifest(project, {
      agent: { source: { git: 'http://127.0.0.1:9/agent.git' }, ref: repo.first },
    });
    writeFileSync(path.join(project, 'Dockerfile'), 'FROM scratch\n');
    const errs: string[] = [];
    const code = await main(['verify', '--remote'], {
      stdout: () => {},
      stderr: (s) => errs.push(s),
      env: {},
      cwd: project,
    });
    expect(code).toBe(3);
    expect(errs.join('')).toContain('cannot reach http://127.0.0.1:9/agent.git');
  });
});
