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
import { sourceKind } from '../manifest/schema.js';
import { type SourceTokens, sourceFor } from '../sources/index.js';
import type { TreeSource } from '../sources/source.js';
import { type CacheKey, defaultCacheDir, TemplateCache } from './cache.js';
import { RECEIPT_FILE, type StagedTemplate, type StagingReceipt } from './receipt.js';
import { type MaterialiseResult, materialise, missingRequired } from './tree.js';

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
  const sink = options.sink ?? silentSink;
  const env = options.env ?? {};
  const redactor = new Redactor();
  const { manifest } = loaded;
  const names = selectTemplates(loaded, options.only);
  refuseUnpinned(loaded, names);
  const root = stagingRoot(loaded);
  const rel = path.relative(loaded.dir, root);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new SlipwayError(
      'STAGING_REFUSED',
      `stagingDir "${manifest.stagingDir}" must be a directory inside ${loaded.dir}: Slipway owns it and removes what the manifest does not stage`,
      {
        resource: loaded.file,
        hint: 'use a dedicated directory such as .tenant-bundle-deps/workspace-configs-templates',
      },
    );
  }
  const cache = options.noCache ? undefined : new TemplateCache(options.cacheDir ?? defaultCacheDir(env));
  // A failing template stops the others early instead of letting them finish a doomed run.
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) abort.abort();

  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    throw fsFailure(err, root);
  }
  const release = await lockStaging(root);
  try {
    await removeLeftovers(root);
    const previous = await readReceipt(loaded).catch(() => null);
    const limit = pLimit(Math.max(1, options.concurrency ?? 4));
    const prepared: Prepared[] = [];
    const failures: Array<{ name: string; err: unknown }> = [];
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          if (abort.signal.aborted) return;
          try {
            prepared.push(await prepare(name));
          } catch (err) {
            failures.push({ name, err });
            abort.abort();
          }
        }),
      ),
    );
    if (failures.length > 0 || options.signal?.aborted) {
      await Promise.all(prepared.map((p) => rm(p.temp, { recursive: true, force: true })));
      const real = failures.find((f) => !isSlipwayError(f.err, 'INTERRUPTED')) ?? failures[0];
      if (real === undefined)
        throw new SlipwayError('INTERRUPTED', 'staging was interrupted', { resource: root });
      sink({
        kind: 'step-failed',
        stage: 'stage',
        subject: real.name,
        message: redactor.redact(messageOf(real.err)),
      });
      throw scrub(real.err, real.name);
    }

    // All templates are complete: swap them in, then record them.
    const retired: string[] = [];
    for (const p of prepared.sort((a, b) => (a.name < b.name ? -1 : 1))) {
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
    const templates: Record<string, StagedTemplate> = {};
    const fresh = new Map(prepared.map((p) => [p.name, p.entry]));
    for (const name of Object.keys(manifest.templates).sort()) {
      const entry = fresh.get(name) ?? previous?.templates[name];
      if (entry) templates[name] = entry;
    }
    const receipt: StagingReceipt = { version: 1, stagingDir: stagingDirOf(loaded), templates };
    await writeFileAtomic(receiptPath(loaded), `${JSON.stringify(receipt, null, 2)}\n`);
    await Promise.all(retired.map((d) => rm(d, { recursive: true, force: true })));
    await removeStale(root, new Set(Object.keys(manifest.templates)), sink);
    return receipt;
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
    await release();
  }

  async function prepare(name: string): Promise<Prepared> {
    const template = manifest.templates[name];
    if (!template) throw new Error(`unknown template ${name}`);
    const source = sourceFor(
      template,
      {
        subject: name,
        manifestDir: loaded.dir,
        env,
        redactor,
        sink,
        signal: abort.signal,
        ...(options.timeouts ? { timeouts: options.timeouts } : {}),
      },
      options.tokens,
    );
    const ref = sourceKind(template.source) === 'path' ? null : (template.ref ?? null);
    const temp = path.join(root, `.${name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const selection = {
      subject: name,
      ...(template.include ? { include: template.include } : {}),
      ...(template.exclude ? { exclude: template.exclude } : {}),
      ...(template.allowSensitive ? { allowSensitive: template.allowSensitive } : {}),
      sensitive: options.allowSensitive ? ('warn' as const) : ('refuse' as const),
    };
    try {
      const result = await fetchAndMaterialise(source, ref, temp, selection);
      for (const w of result.sensitiveStaged) {
        sink({
          kind: 'log',
          stage: 'stage',
          level: 'warn',
          subject: name,
          message: `staging credential-looking file ${w} because allowSensitive is set`,
        });
      }
      for (const a of result.allowedSensitive) {
        sink({
          kind: 'log',
          stage: 'stage',
          level: 'warn',
          subject: name,
          message: `staging ${a.at} (${a.message}): templates.${name}.allowSensitive allows it`,
        });
      }
      const missing = missingRequired(result.entries, template.required);
      if (missing.length > 0) {
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
      const entry: StagedTemplate = {
        name,
        source: source.description,
        ref,
        digest: result.digest,
        files: result.files,
        bytes: result.bytes,
        dir: path.posix.join(stagingDirOf(loaded), name),
      };
      sink({
        kind: 'step-done',
        stage: 'stage',
        subject: name,
        message: `staged ${result.files} files (${result.bytes} bytes), digest ${result.digest.slice(0, 19)}`,
      });
      return { name, temp, entry };
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
  }

  async function fetchAndMaterialise(
    source: TreeSource,
    ref: string | null,
    temp: string,
    selection: Parameters<typeof materialise>[2],
  ): Promise<MaterialiseResult> {
    const subject = selection.subject;
    const at = ref === null ? '' : ` at ${ref.slice(0, 12)}`;
    if (cache && source.cacheable && ref !== null) {
      const key: CacheKey = { identity: source.identity, ref, subdir: source.subdir };
      const hit = await cache.get(key);
      if (hit) {
        const result = await materialise(hit.tree, temp, selection);
        if (result.sourceDigest === hit.sourceDigest) {
          sink({
            kind: 'step-done',
            stage: 'source',
            subject,
            message: `${source.description}${at} from cache`,
            skipped: true,
          });
          return result;
        }
        // Someone edited or damaged the cached copy: it is no longer the pinned commit's tree.
        sink({
          kind: 'log',
          stage: 'source',
          level: 'warn',
          subject,
          message: 'cached tree was modified; fetching again',
        });
        await rm(temp, { recursive: true, force: true });
        await cache.remove(key);
      }
      const scratch = await cache.scratch();
      try {
        sink({
          kind: 'step-start',
          stage: 'source',
          subject,
          message: `fetching ${source.description}${at}`,
        });
        await source.fetchTree(ref, path.join(scratch, 'tree'));
        sink({ kind: 'step-done', stage: 'source', subject, message: `fetched ${source.description}${at}` });
        const result = await materialise(path.join(scratch, 'tree'), temp, selection);
        await cache.commit(scratch, key, result.sourceDigest);
        return result;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
    const raw = `${temp}.src`;
    try {
      sink({ kind: 'step-start', stage: 'source', subject, message: `fetching ${source.description}${at}` });
      await source.fetchTree(ref, raw);
      sink({ kind: 'step-done', stage: 'source', subject, message: `fetched ${source.description}${at}` });
      return await materialise(raw, temp, selection);
    } finally {
      await rm(raw, { recursive: true, force: true });
    }
  }

  // Errors leave the library redacted: a tool may have echoed a token into a message.
  function scrub(err: unknown, name: string): unknown {
    if (isSlipwayError(err)) {
      err.message = redactor.redact(err.message);
      return err;
    }
    if (typeof (err as NodeJS.ErrnoException)?.code === 'string')
      return fsFailure(err, path.join(root, name), redactor);
    return err;
  }
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
