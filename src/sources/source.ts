import { SlipwayError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import type { Redactor } from '../core/redact.js';
import type { Timeouts } from '../core/timeouts.js';
import { FULL_SHA_RE } from '../manifest/contract.js';
import type { SourceKind, Template } from '../manifest/schema.js';
import type { ExtractObserver } from './extract.js';

/**
 * The template source port: the only calls staging and `verify --remote` make on a place that
 * holds template trees (a git repository, a GitHub/Gitea API, a local directory). Implementations
 * live beside this file; {@link TreeSource} values come from `sourceFor` (sources/source-for.ts).
 */
export interface TreeSource {
  readonly kind: SourceKind;
  /** Stable, credential-free identity of the repository (part of the cache key). */
  readonly identity: string;
  /** Credential-free description for receipts and messages, e.g. `git file:///srv/t.git#agent`. */
  readonly description: string;
  /** The subdirectory staged, '' for the whole tree (part of the cache key). */
  readonly subdir: string;
  /** Whether a fetched tree may be cached by commit (false for unpinned local directories). */
  readonly cacheable: boolean;
  /**
   * Writes the tree of commit `ref` (restricted to `subdir`) into the empty directory `dest`,
   * refusing entries that could escape it. `ref` is null only for local directories. A source
   * that unpacks an archive reports every file to `observer` as it writes it (and ends it), so
   * the tree is checked without being read back; one that does not leaves it unended.
   */
  fetchTree(
    ref: string | null,
    dest: string,
    observer?: ExtractObserver,
    options?: FetchOptions,
  ): Promise<void>;
  /** True when commit `ref` exists at the source; throws *_UNREACHABLE when the host does not answer. */
  commitExists(ref: string): Promise<boolean>;
}

/** Extra work a source may do while it writes a tree. */
export interface FetchOptions {
  /**
   * A path that does not exist yet, where the source may also leave a hard-linked copy of the
   * tree once it is completely written (the cache's copy, made without another process start).
   * A copy is there only when complete; a source that does not make one leaves the path absent.
   */
  readonly linkCopyTo?: string;
}

/**
 * Chooses the {@link TreeSource} for a manifest template (the composition root binds the tokens).
 * It may answer a promise, so the implementations load only when a template is fetched.
 */
export type TemplateSources = (template: Template, ctx: SourceContext) => TreeSource | Promise<TreeSource>;

/** What every source implementation is given: no process globals, everything passed in. */
export interface SourceContext {
  /** Names the template in errors and events. */
  readonly subject: string;
  /** Resolves relative local paths. */
  readonly manifestDir: string;
  /** Environment for tokens (GITHUB_TOKEN, GITEA_TOKEN, SLIPWAY_GIT_TOKEN). */
  readonly env: NodeJS.ProcessEnv;
  /** Scrubs tokens from every message; sources register the tokens they use. */
  readonly redactor: Redactor;
  /** Scratch space for temporary repositories (default: the OS temp dir). */
  readonly tmpDir?: string;
  readonly sink?: EventSink;
  readonly signal?: AbortSignal;
  /** Limits for every call to the host (default DEFAULT_TIMEOUTS). */
  readonly timeouts?: Timeouts;
}

/**
 * The pinned commit of a git or archive source, or CONTRACT_VIOLATION: fetching a branch would
 * stage whatever it points at today, which the pinning contract forbids.
 */
export function requirePinnedSha(ref: string | null, subject: string): string {
  if (ref === null || !FULL_SHA_RE.test(ref)) {
    throw new SlipwayError(
      'CONTRACT_VIOLATION',
      `template "${subject}": ref ${ref === null ? '(none)' : `"${ref}"`} is not a full 40-hex commit`,
      { resource: subject, hint: 'pin the commit itself, e.g. the output of `git rev-parse <branch>`' },
    );
  }
  return ref;
}
