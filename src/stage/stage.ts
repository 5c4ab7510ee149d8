import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { isSlipwayError, messageOf, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { Redactor } from '../core/redact.js';
import type { Timeouts } from '../core/timeouts.js';
import { checkContract } from '../manifest/contract.js';
import type { LoadedManifest } from '../manifest/load.js';
import { sourceKind, type Template } from '../manifest/schema.js';
import type { ExtractObserver } from '../sources/extract.js';
import type { FetchOptions, TemplateSources, TreeSource } from '../sources/source.js';
import { type SourceTokens, sourceFor } from '../sources/source-for.js';
import {
  type MaterialiseResult,
  materialise,
  materialiseInPlace,
  missingRequired,
  type SelectionOptions,
  TreeRecorder,
} from '../sources/tree.js';
import { type CacheKey, defaultCacheDir, TemplateCache } from './cache.js';
import { RECEIPT_FILE, type StagedTemplate, type StagingReceipt } from './receipt.js';

/** Options for {@link stageTemplates}. */
export interface StageOptions {
  /** Environment for tokens and the cache location; the library never reads process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where fetched trees are cached (default `$XDG_CACHE_HOME/slipway/templates`). */
  cacheDir?: string;
  /** Fetch every template again and leave the cache untouched. */
  noCache?: boolean;
  /** Stage only these templates; the others keep their staged tree and receipt entry. */
  only?: string[];
  /** How many templates are fetched at once (default 4). */
  concurrency?: number;
  sink?: EventSink;
  signal?: AbortSignal;
  /** Stage credential-looking files anyway, with a warning each (prefer a template's allowSensitive). */
  allowSensitive?: boolean;
  /** Tokens given explicitly instead of SLIPWAY_GIT_TOKEN / GITHUB_TOKEN / GITEA_TOKEN. */
  tokens?: SourceTokens;
  /** The template sources port (default: `sourceFor` with `tokens`). */
  sources?: TemplateSources;
  /** Limits for every call to a template host (default DEFAULT_TIMEOUTS). */
  timeouts?: Timeouts;
}

/** The staging directory's path relative to the manifest dir, POSIX, normalised. */
function stagingDirOf(loaded: LoadedManifest): string {
  return path.posix.normalize(loaded.manifest.stagingDir.replace(/\\/g, '/')).replace(/\/+$/, '');
}

/** Absolute path of the staging directory (`<manifestDir>/<stagingDir>`). */
export function stagingRoot(loaded: LoadedManifest): string {
  return path.resolve(loaded.dir, stagingDirOf(loaded));
}

/** Absolute path of the staging receipt, `<manifestDir>/<stagingDir>/staged.lock.json`. */
export function receiptPath(loaded: LoadedManifest): string {
  return path.join(stagingRoot(loaded), RECEIPT_FILE);
}

const ReceiptSchema = z.object({
  version: z.literal(1),
  stagingDir: z.string(),
  templates: z.record(
    z.string(),
    z.object({
      name: z.string(),
      source: z.string(),
      ref: z.string().nullable(),
      digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
      files: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      dir: z.string(),
    }),
  ),
});

/** The staging receipt, or null when nothing was staged yet. Throws STAGING_REFUSED when it is damaged. */
export async function readReceipt(loaded: LoadedManifest): Promise<StagingReceipt | null> {
  const file = receiptPath(loaded);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SlipwayError('STAGING_REFUSED', `cannot read the staging receipt ${file}: ${messageOf(err)}`, {
      resource: file,
      hint: 'check the permissions of the staging directory',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const result = ReceiptSchema.safeParse(parsed);
  if (!result.success) {
    throw new SlipwayError(
      'STAGING_REFUSED',
      `the staging receipt ${file} is damaged or not a version 1 receipt`,
      {
        resource: file,
        hint: 'run `slipway stage` to stage the templates and rewrite it',
      },
    );
  }
  return result.data as StagingReceipt;
}

/** One template staged into its temporary directory, not yet renamed into place. */
interface Prepared {
  readonly name: string;
  readonly temp: string;
  readonly entry: StagedTemplate;
}

/** Everything one staging run's steps share. */
interface StageRun {
  readonly loaded: LoadedManifest;
  readonly options: StageOptions;
  /** The staging directory, absolute. */
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  readonly sink: EventSink;
  readonly redactor: Redactor;
  readonly cache: TemplateCache | undefined;
  /** Aborted by the caller's signal, or by the first failing template to stop the others. */
  readonly abort: AbortController;
}

/**
 * Stages the manifest's templates into `<manifestDir>/<stagingDir>/<name>/` and writes the
 * receipt. Every template is first materialised beside its target; only when all succeeded are
 * they renamed into place and the receipt rewritten, so a failure leaves the previous staged
 * trees and receipt untouched. Fetched trees are cached by (source, commit, subdir).
 */
export async function stageTemplates(
  loaded: LoadedManifest,
  options: StageOptions = {},
): Promise<StagingReceipt> {
  const names = selectTemplates(loaded, options.only);
  refuseUnpinned(loaded, names);
  const run = openRun(loaded, options);
  const stopForwarding = forwardAbort(options.signal, run.abort);
  try {
    return await withStagingLock(run.root, async () => {
      await removeLeftovers(run.root);
      const previous = await readReceipt(loaded).catch(() => null);
      const prepared = await prepareAll(run, names);
      const retired = await swapIntoPlace(run.root, prepared);
      const receipt = receiptFor(loaded, prepared, previous);
      await writeReceipt(loaded, receipt);
      await removeDirectories(retired);
      await removeStale(run.root, new Set(Object.keys(loaded.manifest.templates)), run.sink);
      return receipt;
    });
  } finally {
    stopForwarding();
  }
}

/** The run's shared state, after refusing a staging directory outside the manifest's directory. */
function openRun(loaded: LoadedManifest, options: StageOptions): StageRun {
  const env = options.env ?? {};
  const root = stagingRoot(loaded);
  const rel = path.relative(loaded.dir, root);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new SlipwayError(
      'STAGING_REFUSED',
      `stagingDir "${loaded.manifest.stagingDir}" must be a directory inside ${loaded.dir}: Slipway owns it and removes what the manifest does not stage`,
      {
        resource: loaded.file,
        hint: 'use a dedicated directory such as .tenant-bundle-deps/workspace-configs-templates',
      },
    );
  }
  return {
    loaded,
    options,
    root,
    env,
    sink: options.sink ?? silentSink,
    redactor: new Redactor(),
    cache: options.noCache ? undefined : new TemplateCache(options.cacheDir ?? defaultCacheDir(env)),
    abort: new AbortController(),
  };
}

/** Aborts `abort` when the caller's signal does (or already did); returns the unsubscribe. */
function forwardAbort(signal: AbortSignal | undefined, abort: AbortController): () => void {
  const onAbort = () => abort.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) abort.abort();
  return () => signal?.removeEventListener('abort', onAbort);
}

/** Runs `step` holding the staging directory's lock, creating the directory first. */
async function withStagingLock<T>(root: string, step: () => Promise<T>): Promise<T> {
  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    throw fsFailure(err, root);
  }
  const unlock = await lockStaging(root);
  try {
    return await step();
  } finally {
    await unlock();
  }
}

/**
 * Prepares every selected template beside its target, a few at a time. The first failure stops
 * the others; then every prepared tree is removed and the failure thrown.
 */
async function prepareAll(run: StageRun, names: readonly string[]): Promise<Prepared[]> {
  const limit = pLimit(Math.max(1, run.options.concurrency ?? 4));
  const prepared: Prepared[] = [];
  const failures: Array<{ name: string; err: unknown }> = [];
  await Promise.all(
    names.map((name) =>
      limit(async () => {
        if (run.abort.signal.aborted) return;
        try {
          prepared.push(await prepareTemplate(run, name));
        } catch (err) {
          failures.push({ name, err });
          run.abort.abort();
        }
      }),
    ),
  );
  if (failures.length === 0 && !run.options.signal?.aborted) return prepared;
  await removeDirectories(prepared.map((p) => p.temp));
  // The templates stopped by the first failure report INTERRUPTED: name the real cause.
  const real = failures.find((f) => !isSlipwayError(f.err, 'INTERRUPTED')) ?? failures[0];
  if (real === undefined)
    throw new SlipwayError('INTERRUPTED', 'staging was interrupted', { resource: run.root });
  run.sink({
    kind: 'step-failed',
    stage: 'stage',
    subject: real.name,
    message: run.redactor.redact(messageOf(real.err)),
  });
  throw scrub(run, real.err, real.name);
}

/** One template: fetched (or from the cache), materialised, required files verified, recorded. */
async function prepareTemplate(run: StageRun, name: string): Promise<Prepared> {
  const template = run.loaded.manifest.templates[name];
  if (!template) throw new Error(`unknown template ${name}`);
  const sources = run.options.sources ?? ((t, ctx) => sourceFor(t, ctx, run.options.tokens));
  const source = await sources(template, {
    subject: name,
    manifestDir: run.loaded.dir,
    env: run.env,
    redactor: run.redactor,
    sink: run.sink,
    signal: run.abort.signal,
    ...(run.options.timeouts ? { timeouts: run.options.timeouts } : {}),
  });
  const ref = sourceKind(template.source) === 'path' ? null : (template.ref ?? null);
  const temp = path.join(run.root, `.${name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    const result = await fetchAndMaterialise(run, source, ref, temp, selectionOf(run, name, template));
    warnSensitiveStaged(run, name, result);
    verifyRequired(name, template, ref, source, result);
    return { name, temp, entry: recordStaged(run, name, source, ref, result) };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/** Which files of the template's tree are staged, and what a credential-looking one does. */
function selectionOf(run: StageRun, name: string, template: Template): SelectionOptions {
  return {
    subject: name,
    ...(template.include ? { include: template.include } : {}),
    ...(template.exclude ? { exclude: template.exclude } : {}),
    ...(template.allowSensitive ? { allowSensitive: template.allowSensitive } : {}),
    sensitive: run.options.allowSensitive ? 'warn' : 'refuse',
  };
}

/** The template's tree materialised into `temp`: from the cache when it holds the pinned tree intact, else fetched. */
async function fetchAndMaterialise(
  run: StageRun,
  source: TreeSource,
  ref: string | null,
  temp: string,
  selection: SelectionOptions,
): Promise<MaterialiseResult> {
  const { cache } = run;
  if (!cache || !source.cacheable || ref === null) return fetchDirect(run, source, ref, temp, selection);
  const key: CacheKey = { identity: source.identity, ref, subdir: source.subdir };
  return (
    (await fromCache(run, cache, key, source, temp, selection)) ??
    (await fetchIntoCache(run, cache, key, source, temp, selection))
  );
}

/** The cached tree materialised, or null (after discarding it) when there is none or it was modified. */
async function fromCache(
  run: StageRun,
  cache: TemplateCache,
  key: CacheKey,
  source: TreeSource,
  temp: string,
  selection: SelectionOptions,
): Promise<MaterialiseResult | null> {
  const subject = selection.subject;
  const hit = await cache.get(key);
  if (!hit) return null;
  // Linked, not copied: the cache is Slipway's own, and a file edited through a link fails this check next time.
  const result = await materialise(hit.tree, temp, selection, { link: true });
  if (result.sourceDigest === hit.sourceDigest) {
    run.sink({
      kind: 'step-done',
      stage: 'source',
      subject,
      message: `${source.description}${atRef(key.ref)} from cache`,
      skipped: true,
    });
    return result;
  }
  // Someone edited or damaged the cached copy: it is no longer the pinned commit's tree.
  run.sink({
    kind: 'log',
    stage: 'source',
    level: 'warn',
    subject,
    message: 'cached tree was modified; fetching again',
  });
  await rm(temp, { recursive: true, force: true });
  await cache.remove(key);
  return null;
}

/**
 * Fetches straight into `temp` and checks the tree there (one write per file), then caches it by
 * hard links. A template that selects files (include/exclude) is staged from a cached copy of
 * the whole tree, as before.
 */
async function fetchIntoCache(
  run: StageRun,
  cache: TemplateCache,
  key: CacheKey,
  source: TreeSource,
  temp: string,
  selection: SelectionOptions,
): Promise<MaterialiseResult> {
  // Checked as it is written (hashes and credential checks on the bytes in hand); a source that
  // does not report its files is walked and read back instead.
  const recorder = new TreeRecorder(selection);
  const scratch = await cache.scratch();
  const copy = path.join(scratch, 'tree');
  try {
    // The source may leave the cache's hard-linked copy itself, once the tree is written.
    const observed = recorder.applies ? { observer: recorder, options: { linkCopyTo: copy } } : {};
    await fetchTree(run, source, key.ref, temp, selection.subject, observed.observer, observed.options);
    const inPlace = recorder.result(temp) ?? (await materialiseInPlace(temp, selection));
    if (inPlace) {
      if (!existsSync(copy)) await cache.linkCopy(temp, copy);
      await cache.commit(scratch, key, inPlace.sourceDigest);
      return inPlace;
    }
    await rm(copy, { recursive: true, force: true });
    await rename(temp, copy);
    const result = await materialise(copy, temp, selection);
    await cache.commit(scratch, key, result.sourceDigest);
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Fetches beside the target and materialises from there, leaving no cache entry. */
async function fetchDirect(
  run: StageRun,
  source: TreeSource,
  ref: string | null,
  temp: string,
  selection: SelectionOptions,
): Promise<MaterialiseResult> {
  const raw = `${temp}.src`;
  try {
    await fetchTree(run, source, ref, raw, selection.subject);
    return await materialise(raw, temp, selection);
  } finally {
    await rm(raw, { recursive: true, force: true });
  }
}

/** The source's tree at `ref` into `dest`, announced before and after. */
async function fetchTree(
  run: StageRun,
  source: TreeSource,
  ref: string | null,
  dest: string,
  subject: string,
  observer?: ExtractObserver,
  options?: FetchOptions,
): Promise<void> {
  const at = atRef(ref);
  run.sink({ kind: 'step-start', stage: 'source', subject, message: `fetching ${source.description}${at}` });
  await source.fetchTree(ref, dest, observer, options);
  run.sink({ kind: 'step-done', stage: 'source', subject, message: `fetched ${source.description}${at}` });
}

/** ` at <short commit>` for messages, or nothing for a local path. */
function atRef(ref: string | null): string {
  return ref === null ? '' : ` at ${ref.slice(0, 12)}`;
}

/** Warns about each credential-looking file staged because the run allows them. */
function warnSensitiveStaged(run: StageRun, name: string, result: MaterialiseResult): void {
  for (const file of result.sensitiveStaged) {
    run.sink({
      kind: 'log',
      stage: 'stage',
      level: 'warn',
      subject: name,
      message: `staging credential-looking file ${file} because the stage run allows sensitive files (allowSensitive option)`,
    });
  }
  // Allowed by the template itself: still said out loud, so nobody bakes a secret by accident.
  for (const a of result.allowedSensitive) {
    run.sink({
      kind: 'log',
      stage: 'stage',
      level: 'warn',
      subject: name,
      message: `staging ${a.at} (${a.message}): templates.${name}.allowSensitive allows it`,
    });
  }
}

/** Refuses a staged tree that lacks one of the template's `required` files. */
function verifyRequired(
  name: string,
  template: Template,
  ref: string | null,
  source: TreeSource,
  result: MaterialiseResult,
): void {
  const missing = missingRequired(result.entries, template.required);
  if (missing.length === 0) return;
  throw new SlipwayError(
    'REQUIRED_FILE_MISSING',
    `template "${name}" at ${ref ?? 'its local path'} lacks required file${missing.length === 1 ? '' : 's'} ${missing.join(', ')} (${source.description})`,
    {
      resource: `${name}:${missing[0]}`,
      details: missing.map((m) => ({ at: `templates.${name}.required`, message: `${m} is missing` })),
      hint: `add ${missing.join(', ')} to the template at that commit and pin the new commit, or check "subdir", "include" and "exclude"`,
    },
  );
}

/** The template's receipt entry, announced as staged. */
function recordStaged(
  run: StageRun,
  name: string,
  source: TreeSource,
  ref: string | null,
  result: MaterialiseResult,
): StagedTemplate {
  run.sink({
    kind: 'step-done',
    stage: 'stage',
    subject: name,
    message: `staged ${result.files} files (${result.bytes} bytes), digest ${result.digest.slice(0, 19)}`,
  });
  return {
    name,
    source: source.description,
    ref,
    digest: result.digest,
    files: result.files,
    bytes: result.bytes,
    dir: path.posix.join(stagingDirOf(run.loaded), name),
  };
}

/** Renames every prepared tree onto its target; returns the retired previous trees to remove. */
async function swapIntoPlace(root: string, prepared: readonly Prepared[]): Promise<string[]> {
  const retired: string[] = [];
  for (const p of [...prepared].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const target = path.join(root, p.name);
    const old = path.join(root, `.${p.name}.old-${process.pid}-${Date.now()}`);
    try {
      await rename(target, old);
      retired.push(old);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsFailure(err, target);
    }
    await rename(p.temp, target).catch((err) => {
      throw fsFailure(err, target);
    });
  }
  return retired;
}

/** The new receipt: the fresh entries, and the previous ones of templates not staged this run. */
function receiptFor(
  loaded: LoadedManifest,
  prepared: readonly Prepared[],
  previous: StagingReceipt | null,
): StagingReceipt {
  const fresh = new Map(prepared.map((p) => [p.name, p.entry]));
  const templates: Record<string, StagedTemplate> = {};
  for (const name of Object.keys(loaded.manifest.templates).sort()) {
    const entry = fresh.get(name) ?? previous?.templates[name];
    if (entry) templates[name] = entry;
  }
  return { version: 1, stagingDir: stagingDirOf(loaded), templates };
}

/** Writes the receipt atomically: a reader sees the old receipt or the new one, never half of one. */
async function writeReceipt(loaded: LoadedManifest, receipt: StagingReceipt): Promise<void> {
  await writeFileAtomic(receiptPath(loaded), `${JSON.stringify(receipt, null, 2)}\n`);
}

/** Removes the directories (temporary or retired trees), tolerating ones already gone. */
async function removeDirectories(dirs: readonly string[]): Promise<void> {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

// Errors leave the library redacted: a tool may have echoed a token into a message.
function scrub(run: StageRun, err: unknown, name: string): unknown {
  if (isSlipwayError(err)) {
    err.message = run.redactor.redact(err.message);
    return err;
  }
  if (typeof (err as NodeJS.ErrnoException)?.code === 'string')
    return fsFailure(err, path.join(run.root, name), run.redactor);
  return err;
}

/** The templates to stage: all, or the `only` ones (each must exist). */
function selectTemplates(loaded: LoadedManifest, only: readonly string[] | undefined): string[] {
  const all = Object.keys(loaded.manifest.templates).sort();
  if (!only || only.length === 0) return all;
  const unknown = only.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    throw new SlipwayError(
      'USAGE',
      `no template named ${unknown.map((n) => `"${n}"`).join(', ')} in ${loaded.file}`,
      {
        resource: loaded.file,
        hint: `known templates: ${all.join(', ') || '(none)'}`,
      },
    );
  }
  return [...new Set(only)].sort();
}

/** Refuses, before any fetch, a selected template whose ref breaks the pinning contract (a branch, a short SHA). */
function refuseUnpinned(loaded: LoadedManifest, names: readonly string[]): void {
  const prefixes = names.map((n) => `templates.${n}.`);
  const errors = checkContract(loaded.manifest).errors.filter((d) =>
    prefixes.some((p) => d.at.startsWith(p)),
  );
  if (errors.length > 0) {
    throw new SlipwayError(
      'CONTRACT_VIOLATION',
      `${loaded.file}: refusing to stage unpinned templates:\n${errors.map((d) => `  ${d.at}: ${d.message}`).join('\n')}`,
      {
        resource: loaded.file,
        details: errors,
        hint: errors[0]?.hint ?? 'pin every template at a full 40-hex commit',
      },
    );
  }
}

/** Takes the staging directory's lock (two concurrent runs would interleave renames). */
async function lockStaging(root: string): Promise<() => Promise<void>> {
  try {
    return await lockfile.lock(root, {
      realpath: false,
      lockfilePath: `${root}.lock`,
      stale: 60_000,
      retries: { retries: 30, minTimeout: 200, maxTimeout: 2000 },
      // A lost lock is reported when released; the default would throw from a timer.
      onCompromised: () => {},
    });
  } catch (err) {
    throw new SlipwayError('STAGING_REFUSED', `another process is staging into ${root}: ${messageOf(err)}`, {
      resource: root,
      hint: `wait for it to finish; if none is running, remove ${root}.lock`,
    });
  }
}

/** Removes temporary and retired directories a crashed run left behind. */
async function removeLeftovers(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    if (/^\..+\.(tmp|old)-/.test(name)) await rm(path.join(root, name), { recursive: true, force: true });
  }
}

/** Removes staged directories of templates the manifest no longer has (Slipway owns the staging dir). */
async function removeStale(root: string, keep: ReadonlySet<string>, sink: EventSink): Promise<void> {
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (keep.has(entry.name) || entry.name === RECEIPT_FILE || entry.name.startsWith('.')) continue;
    if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
    await rm(path.join(root, entry.name), { recursive: true, force: true });
    sink({
      kind: 'log',
      stage: 'stage',
      level: 'info',
      subject: entry.name,
      message: 'removed: no longer a template in the manifest',
    });
  }
}

function fsFailure(err: unknown, where: string, redactor = new Redactor()): SlipwayError {
  return new SlipwayError('STAGING_REFUSED', `cannot write ${where}: ${redactor.redact(messageOf(err))}`, {
    resource: where,
    hint: 'check the permissions of the staging directory and free disk space',
    cause: err,
  });
}
