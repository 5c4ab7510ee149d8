import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Octokit } from '@octokit/rest';
import { boundedFetch } from '../core/bounded-fetch.js';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import { DEFAULT_TIMEOUTS, formatDuration, isTimeout, type Timeouts } from '../core/timeouts.js';
import { type ExtractObserver, extractTar, normaliseSubdir } from './extract.js';
import { requirePinnedSha, type SourceContext, type TreeSource } from './source.js';

/** The GitHub REST API base used when a github source names none. */
export const DEFAULT_GITHUB_API = 'https://api.github.com';

/** Which forge API an archive source talks to. */
export type ForgeKind = 'github' | 'gitea';

/** A GitHub or Gitea source as written in the manifest (`repo` is owner/repo). */
export interface ArchiveSourceSpec {
  readonly forge: ForgeKind;
  readonly repo: string;
  readonly apiUrl?: string;
  readonly subdir?: string;
}

const SILENT_LOG = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A GitHub or Gitea repository fetched as the archive of the pinned commit through the REST API:
 * GitHub `GET /repos/{owner}/{repo}/tarball/{sha}`, Gitea `GET /repos/{owner}/{repo}/archive/{sha}.tar.gz`.
 */
export class ArchiveTemplateSource implements TreeSource {
  readonly kind: ForgeKind;
  readonly identity: string;
  readonly description: string;
  readonly subdir: string;
  readonly cacheable = true;
  private readonly owner: string;
  private readonly repo: string;
  private readonly apiUrl: string;
  private octokit: Promise<Octokit> | undefined;
  private readonly timeouts: Timeouts;

  constructor(
    spec: ArchiveSourceSpec,
    private readonly ctx: SourceContext,
    private readonly token?: string,
  ) {
    this.kind = spec.forge;
    const [owner = '', repo = ''] = spec.repo.split('/');
    this.owner = owner;
    this.repo = repo;
    this.apiUrl = (spec.apiUrl ?? DEFAULT_GITHUB_API).replace(/\/+$/, '');
    this.subdir = normaliseSubdir(spec.subdir);
    this.identity = `${spec.forge}:${this.apiUrl}/${spec.repo}`;
    const api = spec.forge === 'github' && this.apiUrl === DEFAULT_GITHUB_API ? '' : ` (${this.apiUrl})`;
    this.description = `${spec.forge} ${spec.repo}${api}${this.subdir ? `#${this.subdir}` : ''}`;
    ctx.redactor.add(token);
    this.timeouts = ctx.timeouts ?? DEFAULT_TIMEOUTS;
  }

  /** The API client, loaded on first use: @octokit/rest is not part of the CLI's start-up. */
  private client(): Promise<Octokit> {
    this.octokit ??= import('@octokit/rest').then(
      ({ Octokit }) =>
        new Octokit({
          baseUrl: this.apiUrl,
          log: SILENT_LOG,
          userAgent: 'slipway',
          ...(this.token ? { auth: this.token } : {}),
          request: {
            fetch: boundedFetch(this.timeouts),
            ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
          },
        }),
    );
    return this.octokit;
  }

  async fetchTree(ref: string | null, dest: string, observer?: ExtractObserver): Promise<void> {
    const sha = requirePinnedSha(ref, this.ctx.subject);
    const route =
      this.kind === 'github'
        ? 'GET /repos/{owner}/{repo}/tarball/{ref}'
        : 'GET /repos/{owner}/{repo}/archive/{ref}.tar.gz';
    let body: unknown;
    try {
      const res = await (await this.client()).request(route, {
        owner: this.owner,
        repo: this.repo,
        ref: sha,
        request: { parseSuccessResponseBody: false },
      });
      body = res.data;
    } catch (err) {
      throw this.translate(err, sha);
    }
    if (!body || typeof (body as { getReader?: unknown }).getReader !== 'function') {
      throw new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.description} sent no archive for ${sha}`,
        {
          resource: this.description,
          hint: 'check apiUrl: it must be the API base (GitHub: https://api.github.com, Gitea: https://HOST/api/v1)',
        },
      );
    }
    await extractTar(Readable.fromWeb(body as WebReadableStream<Uint8Array>), dest, {
      subject: this.ctx.subject,
      gzip: true,
      strip: 1,
      subdir: this.subdir,
      ...(this.ctx.signal ? { signal: this.ctx.signal } : {}),
      ...(observer ? { observer } : {}),
    });
  }

  async commitExists(ref: string): Promise<boolean> {
    const sha = requirePinnedSha(ref, this.ctx.subject);
    const route =
      this.kind === 'github'
        ? 'GET /repos/{owner}/{repo}/commits/{ref}'
        : 'GET /repos/{owner}/{repo}/git/commits/{ref}';
    try {
      await (await this.client()).request(route, { owner: this.owner, repo: this.repo, ref: sha });
      return true;
    } catch (err) {
      const status = (err as { status?: number }).status;
      // GitHub answers 422 for a well-formed SHA that names no commit.
      if (status === 404 || status === 422) return false;
      throw this.translate(err, sha);
    }
  }

  /** Maps an Octokit/fetch failure to a SlipwayError whose text holds no token. */
  private translate(err: unknown, sha: string): SlipwayError {
    const r = this.ctx.redactor;
    if (this.ctx.signal?.aborted || (err as { name?: string }).name === 'AbortError') {
      return new SlipwayError('INTERRUPTED', `template "${this.ctx.subject}": fetch interrupted`, {
        resource: this.ctx.subject,
      });
    }
    if (isTimeout(err)) {
      return new SlipwayError(
        'GIT_HOST_UNREACHABLE',
        `template "${this.ctx.subject}": ${this.apiUrl} did not answer within ${formatDuration(this.timeouts.requestMs)}`,
        {
          resource: this.description,
          hint: 'the API accepted the connection but stopped answering: check it, or raise --timeout / SLIPWAY_TIMEOUT',
        },
      );
    }
    if (isUnreachable(err)) {
      return new SlipwayError(
        'GIT_HOST_UNREACHABLE',
        `template "${this.ctx.subject}": cannot reach ${this.apiUrl}: ${r.redact(messageOf(err))}`,
        { resource: this.description, hint: 'check apiUrl and your network or VPN; the API did not answer' },
      );
    }
    const status = (err as { status?: number }).status;
    const tokenVar = this.kind === 'github' ? 'GITHUB_TOKEN' : 'GITEA_TOKEN';
    if (status === 404) {
      return new SlipwayError(
        'COMMIT_NOT_FOUND',
        `template "${this.ctx.subject}": ${this.description} has no commit ${sha} (or the repository does not exist or is private)`,
        {
          resource: this.description,
          hint: `check the owner/repo and the pinned commit; for a private repository set ${tokenVar}`,
        },
      );
    }
    if (status === 401 || status === 403) {
      return new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.description} refused access (HTTP ${status}): ${r.redact(messageOf(err))}`,
        { resource: this.description, hint: `set ${tokenVar} to a token that can read the repository` },
      );
    }
    return new SlipwayError(
      'SOURCE_FETCH_FAILED',
      `template "${this.ctx.subject}": fetching ${sha} from ${this.description} failed${status ? ` (HTTP ${status})` : ''}: ${r.redact(messageOf(err))}`,
      { resource: this.description, hint: 'retry; if it persists, check apiUrl and the API status' },
    );
  }
}
