import pLimit from 'p-limit';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { Redactor } from '../core/redact.js';
import type { Timeouts } from '../core/timeouts.js';
import type { LoadedManifest } from '../manifest/load.js';
import { sourceKind } from '../manifest/schema.js';
import type { TemplateSources } from './source.js';
import { type SourceTokens, sourceFor } from './source-for.js';

/** Options for {@link checkRemoteCommits}. */
export interface RemoteCheckOptions {
  /** Environment for tokens (SLIPWAY_GIT_TOKEN, GITHUB_TOKEN, GITEA_TOKEN). */
  readonly env?: NodeJS.ProcessEnv;
  readonly tokens?: SourceTokens;
  /** The template sources port (default: `sourceFor` with `tokens`). */
  readonly sources?: TemplateSources;
  readonly sink?: EventSink;
  readonly signal?: AbortSignal;
  /** Scratch space for temporary repositories. */
  readonly tmpDir?: string;
  readonly concurrency?: number;
  /** Limits for every call to a template host. */
  readonly timeouts?: Timeouts;
}

/** One template's pinned commit, checked at its source. */
export interface RemoteCommit {
  readonly template: string;
  readonly source: string;
  readonly ref: string;
}

/**
 * Checks that every pinned commit exists at its source (`verify --remote`). Local `path` sources
 * and templates without a ref are skipped (the contract check reports those). Throws
 * COMMIT_NOT_FOUND naming every missing pin, or *_UNREACHABLE when a host does not answer.
 */
export async function checkRemoteCommits(
  loaded: LoadedManifest,
  options: RemoteCheckOptions = {},
): Promise<RemoteCommit[]> {
  const sink = options.sink ?? silentSink;
  const redactor = new Redactor();
  const limit = pLimit(options.concurrency ?? 4);
  const missing: ErrorDetail[] = [];
  const checked: RemoteCommit[] = [];
  const jobs = Object.entries(loaded.manifest.templates)
    .filter(([, t]) => sourceKind(t.source) !== 'path' && t.ref !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, t]) =>
      limit(async () => {
        const ref = t.ref ?? '';
        const sources = options.sources ?? ((tt, ctx) => sourceFor(tt, ctx, options.tokens));
        const source = await sources(t, {
          subject: name,
          manifestDir: loaded.dir,
          env: options.env ?? {},
          redactor,
          ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.timeouts ? { timeouts: options.timeouts } : {}),
        });
        sink({
          kind: 'step-start',
          stage: 'source',
          subject: name,
          message: `checking ${ref} at ${source.description}`,
        });
        if (await source.commitExists(ref)) {
          checked.push({ template: name, source: source.description, ref });
          sink({ kind: 'step-done', stage: 'source', subject: name, message: `commit ${ref} exists` });
        } else {
          missing.push({
            at: `templates.${name}.ref`,
            message: `commit ${ref} does not exist in ${source.description}`,
          });
          sink({ kind: 'step-failed', stage: 'source', subject: name, message: `commit ${ref} not found` });
        }
      }),
    );
  await Promise.all(jobs);
  if (missing.length > 0) {
    missing.sort((a, b) => (a.at < b.at ? -1 : 1));
    throw new SlipwayError(
      'COMMIT_NOT_FOUND',
      redactor.redact(
        `${missing.length} pinned commit${missing.length === 1 ? '' : 's'} not found: ${missing.map((d) => `${d.at.split('.')[1]}: ${d.message}`).join('; ')}`,
      ),
      {
        resource: loaded.file,
        details: missing.map((d) => ({ ...d, message: redactor.redact(d.message) })),
        hint: 'push the commits to their repositories, or pin commits that exist there (a rebase or force-push can drop a pinned commit)',
      },
    );
  }
  return checked.sort((a, b) => (a.template < b.template ? -1 : 1));
}
