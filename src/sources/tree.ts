import { lstat, mkdir, readdir, readFile, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { sha256Hex, type TreeEntry, treeDigest } from '../core/tree-digest.js';
import { scanContent } from '../sources/content-scan.js';
import {
  allowSensitiveFilter,
  isGitPath,
  needsContentCheck,
  selectionFilter,
  sensitiveReason,
  unsafeLinkTarget,
} from './rules.js';

/** A file or symlink found in a tree, with its content (files) or target (symlinks). */
interface FoundEntry extends TreeEntry {
  readonly content?: Buffer;
  readonly linkTarget?: string;
  readonly size: number;
}

function refused(subject: string, rel: string, why: string): SlipwayError {
  return new SlipwayError('STAGING_REFUSED', `template "${subject}": "${rel}" ${why}`, {
    resource: rel,
    hint: 'templates may hold regular files, directories and symlinks that stay inside the template; fix the template',
  });
}

/**
 * Every file and symlink under `root` except `.git`, sorted by path, with content. Refuses
 * special files (fifos, sockets, devices) and symlinks that resolve outside `root`.
 */
async function walk(root: string, subject: string): Promise<FoundEntry[]> {
  const realRoot = await realpath(root);
  const out: FoundEntry[] = [];
  async function visit(dir: string, prefix: string): Promise<void> {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (isGitPath(rel)) continue;
      const abs = path.join(dir, name);
      const st = await lstat(abs);
      if (st.isDirectory()) {
        await visit(abs, rel);
      } else if (st.isFile()) {
        const content = await readFile(abs);
        out.push({
          path: rel,
          type: 'file',
          mode: st.mode,
          sha256: sha256Hex(content),
          content,
          size: st.size,
        });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        const why = unsafeLinkTarget(rel, target);
        if (why !== undefined) throw refused(subject, rel, `is a symlink that ${why}`);
        // A chain of in-tree links can still lead out (`a -> s/..` with `s -> .`): check the real path.
        const real = await realpath(abs).catch(() => undefined);
        if (real !== undefined && real !== realRoot && !real.startsWith(`${realRoot}${path.sep}`))
          throw refused(subject, rel, `is a symlink that resolves outside the template (${target})`);
        out.push({
          path: rel,
          type: 'symlink',
          mode: 0o120000,
          sha256: sha256Hex(target),
          linkTarget: target,
          size: 0,
        });
      } else {
        throw refused(subject, rel, 'is not a regular file, directory or symlink (a device, fifo or socket)');
      }
    }
  }
  await visit(root, '');
  return out;
}

/** Digest, file count and byte count of a tree on disk (for checking a staged tree against its receipt). */
export async function digestDirectory(
  dir: string,
  subject = dir,
): Promise<{ digest: string; files: number; bytes: number }> {
  const entries = await walk(dir, subject);
  return {
    digest: treeDigest(entries),
    files: entries.length,
    bytes: entries.reduce((n, e) => n + e.size, 0),
  };
}

/** Which files a template stages: its include/exclude globs and credential allow-list. */
export interface SelectionOptions {
  /** Names the template in errors. */
  readonly subject: string;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly allowSensitive?: readonly string[];
  /**
   * What to do with credential-looking files not matched by `allowSensitive`: refuse them
   * (default), stage them and report them, or ignore the check (a raw copy checked later).
   */
  readonly sensitive?: 'refuse' | 'warn' | 'ignore';
}

/** What {@link materialise} staged. */
export interface MaterialiseResult {
  /** Digest of the whole source tree (minus `.git`), before selection: checks a cached copy. */
  readonly sourceDigest: string;
  /** The staged entries (for the tree digest and `required` checks). */
  readonly entries: readonly TreeEntry[];
  readonly digest: string;
  readonly files: number;
  readonly bytes: number;
  /** Credential-looking files staged anyway (only with `sensitive: 'warn'`), `file` or `file:line`. */
  readonly sensitiveStaged: readonly string[];
  /** Credential-looking files staged because `allowSensitive` lists them, each with what it looks like. */
  readonly allowedSensitive: readonly ErrorDetail[];
}

/**
 * Copies the selected files of the tree at `src` into the empty directory `dest`: drops `.git`
 * and what `include`/`exclude` leave out, refuses credential-looking files not allowed by
 * `allowSensitive` (all of them in one error) and anything that could escape the template.
 */
export async function materialise(
  src: string,
  dest: string,
  options: SelectionOptions,
): Promise<MaterialiseResult> {
  const found = await walk(src, options.subject);
  const selected = selectionFilter(options.include, options.exclude);
  const allowed = allowSensitiveFilter(options.allowSensitive);
  const staged = found.filter((e) => selected(e.path));
  const sensitive: ErrorDetail[] = [];
  const allowedSensitive: ErrorDetail[] = [];
  const mode = options.sensitive ?? 'refuse';
  for (const e of mode === 'ignore' ? [] : staged) {
    if (e.type !== 'file') continue;
    const reason = sensitiveReason(e.path, needsContentCheck(e.path) ? e.content : undefined);
    // The name decides first; otherwise the content (file:line, never the value).
    const problems =
      reason !== undefined
        ? [{ at: e.path, message: `looks like ${reason}` }]
        : scanContent(e.content ?? '').map((s) => ({
            at: `${e.path}:${s.line}`,
            message: `holds ${s.what}`,
          }));
    (allowed(e.path) ? allowedSensitive : sensitive).push(...problems);
  }
  if (sensitive.length > 0 && mode === 'refuse') {
    throw new SlipwayError(
      'STAGING_REFUSED',
      `template "${options.subject}" holds ${sensitive.length} credential-looking file${sensitive.length === 1 ? '' : 's'}: ${sensitive.map((d) => `${d.at} (${d.message})`).join(', ')}`,
      {
        resource: options.subject,
        details: sensitive,
        hint: `remove them from the template, leave them out with "exclude", or, if they are deliberately public (a test key), list them in templates.${options.subject}.allowSensitive`,
      },
    );
  }
  await mkdir(dest, { recursive: true });
  for (const e of staged) {
    const target = path.join(dest, ...e.path.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    if (e.type === 'symlink') await symlink(e.linkTarget ?? '', target);
    else
      await writeFile(target, e.content ?? Buffer.alloc(0), {
        flag: 'wx',
        mode: (e.mode & 0o100) !== 0 ? 0o755 : 0o644,
      });
  }
  const entries: TreeEntry[] = staged.map(({ path: p, type, mode, sha256 }) => ({
    path: p,
    type,
    mode,
    sha256,
  }));
  return {
    sourceDigest: treeDigest(found),
    entries,
    digest: treeDigest(entries),
    files: staged.length,
    bytes: staged.reduce((n, e) => n + e.size, 0),
    sensitiveStaged: sensitive.map((d) => d.at),
    allowedSensitive,
  };
}

/** The `required` paths missing from the staged entries (a path may name a file, symlink or directory). */
export function missingRequired(entries: readonly TreeEntry[], required: readonly string[]): string[] {
  const paths = new Set(entries.map((e) => e.path));
  const prefixes = entries.map((e) => `${e.path}/`);
  return required.filter((r) => {
    const n = path.posix.normalize(r).replace(/^\.\//, '').replace(/\/+$/, '');
    return !paths.has(n) && !prefixes.some((p) => p.startsWith(`${n}/`));
  });
}
