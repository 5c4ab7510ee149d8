import type { TreeEntry } from '../core/tree-digest.js';
import type { ArchiveEntry } from '../engine/container-archive.js';
import type { ImageEngine } from '../engine/image-engine.js';
import type { Assertion } from '../manifest/schema.js';
import { archiveDigest, archiveTreeEntries, diffTrees, pathMatcher } from './archive.js';
import { statFollow } from './container-io.js';
import { type AssertionResult, assertionName } from './report.js';

/** The content a `template` assertion expects: the staged template's digest (receipt or image label). */
export interface ExpectedTemplate {
  /** Tree digest of the staged template (see core/tree-digest.ts). */
  readonly digest: string;
  /** The pinned commit, or null for a local path source. */
  readonly ref: string | null;
  /** Where the expectation came from. */
  readonly source?: 'receipt' | 'label';
  /** The staged file count, when known (from the receipt). */
  readonly files?: number;
  /** The staged tree's entries, when the staged directory is at hand: lets a mismatch name the files. */
  readonly entries?: readonly TreeEntry[];
}

/** What assertions read from and write to while they run. */
export interface AssertionContext {
  readonly engine: ImageEngine;
  /** The running container's ID. */
  readonly containerId: string;
  readonly templates: Readonly<Record<string, ExpectedTemplate>>;
  /** Per-exec time limit. */
  readonly execTimeoutMs: number;
  /** Directory listings copied out as evidence, by container path. */
  readonly listings: Record<string, string[]>;
}

const LISTING_CAP = 200;
const LIST_CAP = 20;

/** Runs one assertion against the running container. Engine errors are reported as a failed assertion. */
export async function runAssertion(
  a: Assertion,
  ctx: AssertionContext,
  archives: Map<string, Promise<ArchiveEntry[] | null>>,
): Promise<AssertionResult> {
  const name = assertionName(a);
  const archive = (p: string) => {
    let got = archives.get(p);
    if (!got) {
      got = ctx.engine.archive(ctx.containerId, p).then((entries) => {
        if (entries) ctx.listings[p] = listing(entries);
        return entries;
      });
      archives.set(p, got);
    }
    return got;
  };
  try {
    switch (a.kind) {
      case 'path':
        return await pathAssertion(a, name, ctx, archive);
      case 'template':
        return await templateAssertion(a, name, ctx, archive);
      case 'absent':
        return await absentAssertion(a, name, archive);
      case 'exec':
        return await execAssertion(a, name, ctx);
    }
  } catch (err) {
    return {
      name,
      kind: a.kind,
      passed: false,
      observed: null,
      message: `could not check: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

type ArchiveFn = (p: string) => Promise<ArchiveEntry[] | null>;

function listing(entries: readonly ArchiveEntry[]): string[] {
  return entries
    .map((e) => (e.type === 'directory' ? `${e.path}/` : e.path))
    .sort()
    .slice(0, LISTING_CAP);
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

async function pathAssertion(
  a: Extract<Assertion, { kind: 'path' }>,
  name: string,
  ctx: AssertionContext,
  archive: ArchiveFn,
): Promise<AssertionResult> {
  const expected = {
    type: a.type,
    ...(a.minSize === undefined ? {} : { minSize: a.minSize }),
    ...(a.mode === undefined ? {} : { mode: a.mode }),
  };
  const base = { name, kind: a.kind, expected } as const;
  const { stat, resolved } = await statFollow(ctx.engine, ctx.containerId, a.path);
  if (!stat) {
    return {
      ...base,
      passed: false,
      observed: null,
      message: `${a.path} does not exist in the running container`,
    };
  }
  const observed: Record<string, unknown> = { type: stat.type, size: stat.size, mode: octal(stat.mode) };
  if (resolved !== a.path) observed.resolved = resolved;
  const problems: string[] = [];
  const wantDir = a.type === 'directory' || a.type === 'non-empty-directory';
  if (a.type === 'file' && stat.type !== 'file') problems.push(`is a ${stat.type}, not a file`);
  if (wantDir && stat.type !== 'directory') problems.push(`is a ${stat.type}, not a directory`);
  if (a.minSize !== undefined && stat.type === 'file' && stat.size < a.minSize) {
    problems.push(`is ${stat.size} bytes, below the minimum of ${a.minSize}`);
  }
  if (a.mode !== undefined && (stat.mode & 0o7777) !== Number.parseInt(a.mode, 8)) {
    problems.push(`has mode ${octal(stat.mode)}, expected ${a.mode}`);
  }
  if (a.type === 'non-empty-directory' && stat.type === 'directory') {
    const entries = await archive(resolved);
    observed.entries = entries?.length ?? 0;
    if (!entries || entries.length === 0) problems.push('is an empty directory');
  }
  if (problems.length > 0) {
    return { ...base, passed: false, observed, message: `${a.path} ${problems.join('; ')}` };
  }
  const what =
    stat.type === 'file'
      ? `file of ${stat.size} bytes`
      : a.type === 'non-empty-directory'
        ? `directory with ${String(observed.entries)} entries`
        : stat.type;
  return { ...base, passed: true, observed, message: `${a.path} is a ${what}, mode ${octal(stat.mode)}` };
}

async function templateAssertion(
  a: Extract<Assertion, { kind: 'template' }>,
  name: string,
  ctx: AssertionContext,
  archive: ArchiveFn,
): Promise<AssertionResult> {
  const want = ctx.templates[a.template];
  const expected = want
    ? {
        template: a.template,
        digest: want.digest,
        ref: want.ref,
        ...(want.source ? { from: want.source } : {}),
        ...(want.files === undefined ? {} : { files: want.files }),
      }
    : { template: a.template };
  const base = { name, kind: a.kind, expected } as const;
  const entries = await archive(a.path);
  if (!entries) {
    return {
      ...base,
      passed: false,
      observed: null,
      message: `${a.path} does not exist in the running container, so it cannot hold template ${a.template}`,
    };
  }
  const tree = archiveTreeEntries(entries, a.ignore ?? []);
  const digest = archiveDigest(entries, a.ignore ?? []);
  const configEntry = entries.find((e) => e.path === 'config.yaml');
  const observed: Record<string, unknown> = {
    digest,
    files: tree.length,
    configYamlBytes: configEntry?.type === 'file' ? configEntry.size : null,
  };
  if (!want) {
    return {
      ...base,
      passed: false,
      observed,
      message: `no expected digest for template ${a.template}: it is neither in the staging receipt nor in the image's labels`,
    };
  }
  if (digest === want.digest) {
    return {
      ...base,
      passed: true,
      observed,
      message: `${a.path} holds template ${a.template}${want.ref ? ` @ ${want.ref.slice(0, 12)}` : ''} exactly (${tree.length} files)`,
    };
  }
  const parts = [
    `${a.path} does not match template ${a.template}: content digest ${digest} != ${want.digest}`,
    `${tree.length} files in the container${want.files === undefined ? '' : ` vs ${want.files} staged`}`,
    observed.configYamlBytes === null
      ? 'no config.yaml at its top level'
      : `config.yaml is ${String(observed.configYamlBytes)} bytes`,
  ];
  if (tree.length === 0) parts.push('the directory is empty');
  if (want.entries) {
    const diff = diffTrees(tree, want.entries);
    observed.diff = {
      onlyInContainer: diff.onlyInContainer.slice(0, LIST_CAP),
      onlyInTemplate: diff.onlyInTemplate.slice(0, LIST_CAP),
      changed: diff.changed.slice(0, LIST_CAP),
    };
    if (diff.changed.length > 0) parts.push(`differing: ${capList(diff.changed)}`);
    if (diff.onlyInTemplate.length > 0) parts.push(`missing: ${capList(diff.onlyInTemplate)}`);
    if (diff.onlyInContainer.length > 0) parts.push(`unexpected: ${capList(diff.onlyInContainer)}`);
  }
  return { ...base, passed: false, observed, message: parts.join('; ') };
}

function capList(items: readonly string[], n = 5): string {
  return items.length <= n
    ? items.join(', ')
    : `${items.slice(0, n).join(', ')} and ${items.length - n} more`;
}

async function absentAssertion(
  a: Extract<Assertion, { kind: 'absent' }>,
  name: string,
  archive: ArchiveFn,
): Promise<AssertionResult> {
  const base = { name, kind: a.kind, expected: { none: a.patterns } } as const;
  const entries = await archive(a.under);
  if (!entries) {
    // Failing closed: a search of a directory that is not there proves nothing.
    return {
      ...base,
      passed: false,
      observed: null,
      message: `${a.under} does not exist, so it cannot be searched`,
    };
  }
  const matches = pathMatcher(a.patterns);
  const found = entries
    .filter((e) => matches(e.path))
    .map((e) => (e.type === 'directory' ? `${e.path}/` : e.path))
    .sort();
  if (found.length > 0) {
    return {
      ...base,
      passed: false,
      observed: found.slice(0, LIST_CAP),
      message: `${a.under} contains ${found.length} forbidden entr${found.length === 1 ? 'y' : 'ies'}: ${capList(found)}`,
    };
  }
  return {
    ...base,
    passed: true,
    observed: [],
    message: `none of ${entries.length} entries under ${a.under} matches ${a.patterns.join(', ')}`,
  };
}

async function execAssertion(
  a: Extract<Assertion, { kind: 'exec' }>,
  name: string,
  ctx: AssertionContext,
): Promise<AssertionResult> {
  const expected = { exitCode: a.exitCode, ...(a.stdout === undefined ? {} : { stdout: a.stdout }) };
  const base = { name, kind: a.kind, expected } as const;
  const out = await ctx.engine.exec(ctx.containerId, a.command, {
    ...(a.user ? { user: a.user } : {}),
    timeoutMs: ctx.execTimeoutMs,
  });
  const observed = { exitCode: out.exitCode, stdout: out.stdout.slice(-500), stderr: out.stderr.slice(-500) };
  const problems: string[] = [];
  if (out.exitCode !== a.exitCode) problems.push(`exited ${out.exitCode}, expected ${a.exitCode}`);
  if (a.stdout !== undefined && !new RegExp(a.stdout, 'm').test(out.stdout)) {
    problems.push(`stdout does not match /${a.stdout}/`);
  }
  if (problems.length > 0) {
    return { ...base, passed: false, observed, message: `"${a.command.join(' ')}" ${problems.join('; ')}` };
  }
  return { ...base, passed: true, observed, message: `"${a.command.join(' ')}" exited ${out.exitCode}` };
}
