import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { boundedFetch, boundedStreamFetch } from '../core/bounded-fetch.js';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { Redactor } from '../core/redact.js';
import {
  DEFAULT_TIMEOUTS,
  formatDuration,
  isTimeout,
  startDeadline,
  type Timeouts,
} from '../core/timeouts.js';
import type {
  BlobStream,
  Descriptor,
  EngineAuth,
  ImageDetails,
  PutTagOptions,
  Registry,
  RegistryManifest,
  RepositoryInfo,
  RepositorySettings,
} from './registry.js';
import {
  isRetryableStatus,
  parseRetryAfter,
  RetryableStatusError,
  type RetryOptions,
  withRetries,
} from './retry.js';
import { isLoopbackHost, type RegistryUrl } from './url.js';

/** Manifest media types Slipway accepts; without them the registry downgrades to schema 1. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
] as const;

/** Options of {@link OciRegistry}. */
export interface OciRegistryOptions {
  readonly username?: string;
  readonly password?: string;
  /** Force plain http (true) or https (false); default: http for loopback hosts only. */
  readonly plainHttp?: boolean;
  readonly fetch?: typeof fetch;
  readonly retries?: RetryOptions;
  readonly redactor?: Redactor;
  /** Per-request limit (used by the default fetch) and the deadline of each retried operation. */
  readonly timeouts?: Timeouts;
}

/** A manifest as the registry serves it. */
export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (or `Basic realm="..."`). */
export function parseChallenge(header: string | null): AuthChallenge | null {
  if (!header) return null;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    params[(p[1] ?? '').toLowerCase()] = p[2] ?? p[3] ?? '';
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

/** `sha256:<hex>` of a buffer. */
export function sha256Digest(body: Uint8Array): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** The `config.digest` of a manifest document, or null (an index has none). */
export function configDigestOf(manifestJson: string): string | null {
  try {
    const doc = JSON.parse(manifestJson) as { config?: { digest?: unknown } };
    return typeof doc.config?.digest === 'string' ? doc.config.digest : null;
  } catch {
    return null;
  }
}

/** What an image config document says that status reads. */
interface ImageConfigDoc {
  created?: unknown;
  config?: { Labels?: Record<string, unknown> | null } | null;
}

/** The `created` time and string labels of an image config document. */
export function parseImageConfig(text: string): { created: string | null; labels: Record<string, string> } {
  let doc: ImageConfigDoc;
  try {
    doc = JSON.parse(text) as ImageConfigDoc;
  } catch {
    return { created: null, labels: {} };
  }
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.config?.Labels ?? {})) if (typeof v === 'string') labels[k] = v;
  return { created: typeof doc.created === 'string' ? doc.created : null, labels };
}

/** The target of a `Link: <…>; rel="next"` header (tags list pagination), or null. */
export function nextLink(header: string | null): string | null {
  const m = header ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(header) : null;
  return m?.[1] ?? null;
}

/** True for the tags cosign keeps its artifacts under (`sha256-<hex>.att`, `.sig`, `.sbom`): not images. */
export function isCosignArtifactTag(tag: string): boolean {
  return /^sha256-[a-f0-9]{64}\.(att|sig|sbom)$/.test(tag);
}

/** At most this many images of a repository are read to find its newest (each costs two requests). */
const MAX_DESCRIBED = 100;
/** Image configs are small JSON documents; anything larger is refused rather than buffered. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

type Scope = string;
const pull = (repo: string): Scope => `repository:${repo}:pull`;
const pushPull = (repo: string): Scope => `repository:${repo}:pull,push`;

/** The outer bound of one streamed blob transfer; its idle limit is what normally ends a stall. */
const STREAM_DEADLINE_MS = 6 * 60 * 60 * 1000;

/** The OCI Distribution API over fetch: anonymous, basic or bearer-token auth, with retries. */
export class OciRegistry implements Registry {
  readonly url: string;
  private readonly host: string;
  private readonly prefix: string;
  private readonly base: string;
  private readonly fetchFn: typeof fetch;
  /** Sends streamed bodies (blobs copied between registries) with backpressure. */
  private readonly streamFetchFn: typeof fetch;
  private readonly redactor: Redactor;
  private readonly basic: string | undefined;
  private scheme: 'none' | 'basic' | 'bearer' = 'none';
  private bearer: { realm: string; service: string | undefined } | undefined;
  private readonly tokens = new Map<string, string>();
  private pinged: Promise<void> | undefined;
  private readonly timeouts: Timeouts;

  constructor(
    url: Extract<RegistryUrl, { kind: 'oci' }>,
    private readonly options: OciRegistryOptions = {},
  ) {
    this.url = url.url;
    this.host = url.host;
    this.prefix = url.prefix;
    const http = options.plainHttp ?? isLoopbackHost(url.host);
    this.base = `${http ? 'http' : 'https'}://${url.host}`;
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.fetchFn = options.fetch ?? boundedFetch(this.timeouts);
    this.streamFetchFn = options.fetch ?? boundedStreamFetch(this.timeouts);
    this.redactor = options.redactor ?? new Redactor();
    this.redactor.add(options.password);
    if (options.username !== undefined && options.password !== undefined) {
      this.basic = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
      this.redactor.add(this.basic.slice(6));
    }
  }

  imageName(repository: string): ImageRef {
    return ImageRef.of({ registry: this.host, repository: this.path(repository) });
  }

  repositoryOf(ref: ImageRef): string | null {
    if (ref.registry !== this.host) return null;
    if (this.prefix === '') return ref.repository;
    return ref.repository.startsWith(`${this.prefix}/`) ? ref.repository.slice(this.prefix.length + 1) : null;
  }

  async engineAuth(): Promise<EngineAuth> {
    if (this.options.username === undefined || this.options.password === undefined) return {};
    return { username: this.options.username, password: this.options.password, serveraddress: this.host };
  }

  /** Checks reachability and credentials once; repositories themselves appear on first push. */
  async ensureRepository(
    _repository: string,
    _options: { create: boolean; settings: RepositorySettings },
  ): Promise<void> {
    this.pinged ??= this.ping();
    try {
      await this.pinged;
    } catch (err) {
      this.pinged = undefined;
      throw err;
    }
  }

  private async ping(): Promise<void> {
    const res = await this.request('GET', '/v2/', { scopes: [], what: 'check the registry' });
    await res.body?.cancel();
    if (!res.ok) throw await this.statusError(res, 'check the registry', this.host);
  }

  async resolve(repository: string, tag: string): Promise<string | null> {
    const repo = this.path(repository);
    const what = `resolve ${repo}:${tag}`;
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${encodeURIComponent(tag)}`, {
      scopes: [pull(repo)],
      what,
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    if (res.status === 404) return null;
    if (!res.ok) throw await this.statusError(res, what, `${repo}:${tag}`);
    const digest = res.headers.get('docker-content-digest');
    if (digest) return digest;
    const fetched = await this.getManifest(repo, tag);
    return fetched?.digest ?? null;
  }

  async configDigest(repository: string, digest: string): Promise<string | null> {
    const manifest = await this.getManifest(this.path(repository), digest);
    return manifest ? configDigestOf(manifest.body.toString('utf8')) : null;
  }

  async putTag(repository: string, digest: string, tag: string, options: PutTagOptions = {}): Promise<void> {
    const dst = this.path(repository);
    const src = this.path(options.from ?? repository);
    const manifest = await this.getManifest(src, digest);
    if (!manifest) {
      throw new SlipwayError('REGISTRY_ERROR', `${this.host}/${src}@${digest} does not exist`, {
        resource: `${this.host}/${src}@${digest}`,
        hint: 'push the image first, or check the digest',
      });
    }
    if (src !== dst) await this.copyReferenced(src, dst, manifest);
    await this.putManifestAt(dst, tag, manifest);
  }

  /**
   * Lists the tags, resolves each (distinct digests are the image count) and reads the configs of
   * up to 100 images for the newest `created`: the Distribution API records no push time.
   */
  async describeRepository(repository: string): Promise<RepositoryInfo> {
    const repo = this.path(repository);
    const tags = await this.listTags(repo);
    if (tags === null) return { exists: false, imageCount: null, newestPush: null, newestPushSource: null };
    const limit = pLimit(6);
    const images = tags.filter((t) => !isCosignArtifactTag(t));
    const resolved = await Promise.all(images.map((t) => limit(() => this.resolve(repository, t))));
    const digests = [...new Set(resolved.filter((d): d is string => d !== null))];
    const details = await Promise.all(
      digests.slice(0, MAX_DESCRIBED).map((d) => limit(() => this.imageDetails(repository, d))),
    );
    const created = details.flatMap((d) => (d?.created ? [d.created] : []));
    const newest =
      created.length > 0 ? created.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a)) : null;
    return {
      exists: true,
      imageCount: digests.length,
      newestPush: newest,
      newestPushSource: newest === null ? null : 'created',
    };
  }

  async imageDetails(repository: string, reference: string): Promise<ImageDetails | null> {
    const repo = this.path(repository);
    const manifest = await this.getManifest(repo, reference);
    if (!manifest) return null;
    const own = configDigestOf(manifest.body.toString('utf8'));
    let configDigest = own;
    if (configDigest === null) {
      // An index: labels live in each platform's config; the first platform speaks for the image.
      const doc = JSON.parse(manifest.body.toString('utf8')) as { manifests?: Array<{ digest: string }> };
      const first = doc.manifests?.[0];
      const child = first ? await this.getManifest(repo, first.digest) : null;
      configDigest = child ? configDigestOf(child.body.toString('utf8')) : null;
    }
    const config = configDigest === null ? null : await this.getBlob(repo, configDigest);
    const parsed = config ? parseImageConfig(config.toString('utf8')) : { created: null, labels: {} };
    return {
      digest: manifest.digest,
      configDigest: own,
      created: parsed.created,
      pushedAt: null,
      labels: parsed.labels,
    };
  }

  async manifest(repository: string, reference: string): Promise<RegistryManifest | null> {
    return this.getManifest(this.path(repository), reference);
  }

  async putManifest(
    repository: string,
    reference: string,
    manifest: { readonly mediaType: string; readonly body: Buffer },
  ): Promise<string> {
    const digest = sha256Digest(manifest.body);
    await this.putManifestAt(this.path(repository), reference, { ...manifest, digest });
    return digest;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const repo = this.path(repository);
    const what = `check blob ${repo}@${digest}`;
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes: [pull(repo)], what });
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (!res.ok) throw await this.statusError(res, what, `${repo}@${digest}`);
    return true;
  }

  async readBlob(repository: string, digest: string): Promise<Buffer | null> {
    return this.getBlob(this.path(repository), digest);
  }

  async openBlob(repository: string, digest: string): Promise<BlobStream | null> {
    const repo = this.path(repository);
    const what = `read blob ${repo}@${digest}`;
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [pull(repo)], what });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok || !res.body) throw await this.statusError(res, what, `${repo}@${digest}`);
    return { size: Number(res.headers.get('content-length') ?? -1), body: res.body };
  }

  async putBlob(repository: string, digest: string, content: Buffer | BlobStream): Promise<void> {
    const repo = this.path(repository);
    const what = `upload blob ${repo}@${digest}`;
    const scopes = [pushPull(repo)];
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scopes, what });
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw await this.statusError(start, what, `${repo}@${digest}`);
    const target = new URL(location, this.base);
    target.searchParams.set('digest', digest);
    const bytes = Buffer.isBuffer(content) ? content : content.body;
    const size = Buffer.isBuffer(content) ? content.length : content.size;
    const put = await this.request('PUT', target.pathname + target.search, {
      scopes,
      what,
      headers: {
        'content-type': 'application/octet-stream',
        ...(size >= 0 ? { 'content-length': String(size) } : {}),
      },
      body: bytes,
    });
    await put.body?.cancel();
    if (!put.ok) throw await this.statusError(put, what, `${repo}@${digest}`);
  }

  async tryMountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const dst = this.path(repository);
    const src = this.path(from);
    const what = `mount blob ${digest} from ${src} into ${dst}`;
    const res = await this.request(
      'POST',
      `/v2/${dst}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(src)}`,
      { scopes: [pushPull(dst), pull(src)], what },
    );
    await res.body?.cancel();
    if (res.status === 201) return true;
    if (res.status !== 202) throw await this.statusError(res, what, `${dst}@${digest}`);
    // Declined: the registry opened an upload session instead; cancel it rather than leave it open.
    const location = res.headers.get('location');
    if (location) {
      const target = new URL(location, this.base);
      const cancel = await this.request('DELETE', target.pathname + target.search, {
        scopes: [pushPull(dst)],
        what: `cancel upload into ${dst}`,
      });
      await cancel.body?.cancel();
    }
    return false;
  }

  async referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[] | null> {
    const repo = this.path(repository);
    const what = `list the referrers of ${repo}@${digest}`;
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.request('GET', `/v2/${repo}/referrers/${digest}${query}`, {
      scopes: [pull(repo)],
      what,
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    // A registry without the referrers API answers 404 (or 405/400) for the path itself.
    if (res.status === 404 || res.status === 405 || res.status === 400) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw await this.statusError(res, what, `${repo}@${digest}`);
    const type = res.headers.get('content-type') ?? '';
    const doc = (await res.json()) as { manifests?: Descriptor[] };
    if (!type.includes('json') || !Array.isArray(doc.manifests)) return null;
    // A registry that ignores the filter says so by not echoing OCI-Filters-Applied.
    const filtered = (res.headers.get('oci-filters-applied') ?? '').includes('artifactType');
    return doc.manifests.filter((m) => !artifactType || filtered || m.artifactType === artifactType);
  }

  /** Every tag of a repository (following pagination), or null when the repository does not exist. */
  private async listTags(repo: string): Promise<string[] | null> {
    const what = `list the tags of ${repo}`;
    const tags: string[] = [];
    let next: string | null = `/v2/${repo}/tags/list?n=1000`;
    while (next !== null) {
      const res = await this.request('GET', next, { scopes: [pull(repo)], what });
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok) throw await this.statusError(res, what, repo);
      const doc = (await res.json()) as { tags?: string[] | null };
      tags.push(...(doc.tags ?? []));
      const link = nextLink(res.headers.get('link'));
      next = link === null ? null : ((u) => u.pathname + u.search)(new URL(link, this.base));
    }
    return tags;
  }

  /** Reads a (small) blob, verifying its digest; null when absent. */
  private async getBlob(repo: string, digest: string): Promise<Buffer | null> {
    const what = `read blob ${repo}@${digest}`;
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [pull(repo)], what });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw await this.statusError(res, what, `${repo}@${digest}`);
    if (Number(res.headers.get('content-length') ?? 0) > MAX_CONFIG_BYTES) {
      await res.body?.cancel();
      throw new SlipwayError('REGISTRY_ERROR', `${what}: larger than ${MAX_CONFIG_BYTES} bytes`, {
        resource: `${this.host}/${repo}@${digest}`,
      });
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (sha256Digest(body) !== digest) {
      throw new SlipwayError(
        'DIGEST_MISMATCH',
        `${this.host}/${repo}@${digest}: the blob served hashes to ${sha256Digest(body)}`,
        {
          resource: `${this.host}/${repo}@${digest}`,
          hint: 'the registry or a proxy altered the blob',
        },
      );
    }
    return body;
  }

  /** Reads a manifest by tag or digest (verifying a digest reference against the body); null when absent. */
  async getManifest(repo: string, reference: string): Promise<FetchedManifest | null> {
    const what = `read manifest ${repo}:${reference}`;
    const res = await this.request('GET', `/v2/${repo}/manifests/${encodeURIComponent(reference)}`, {
      scopes: [pull(repo)],
      what,
      headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw await this.statusError(res, what, `${repo}@${reference}`);
    const body = await this.readBody(res, what);
    const digest = sha256Digest(body);
    const claimed = res.headers.get('docker-content-digest');
    if ((reference.startsWith('sha256:') && digest !== reference) || (claimed && claimed !== digest)) {
      throw new SlipwayError(
        'DIGEST_MISMATCH',
        `${this.host}/${repo}@${reference}: the manifest served hashes to ${digest}${claimed ? ` but the registry says ${claimed}` : ''}`,
        {
          resource: `${this.host}/${repo}@${reference}`,
          hint: 'the registry or a proxy altered the manifest',
        },
      );
    }
    const mediaType =
      res.headers.get('content-type')?.split(';')[0]?.trim() ||
      (JSON.parse(body.toString('utf8')) as { mediaType?: string }).mediaType ||
      MANIFEST_MEDIA_TYPES[0];
    return { digest, mediaType, body };
  }

  private async putManifestAt(repo: string, reference: string, manifest: FetchedManifest): Promise<void> {
    const what = `write manifest ${repo}:${reference}`;
    const res = await this.request('PUT', `/v2/${repo}/manifests/${encodeURIComponent(reference)}`, {
      scopes: [pushPull(repo)],
      what,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.body,
    });
    await res.body?.cancel();
    if (!res.ok) throw await this.statusError(res, what, `${repo}:${reference}`);
    const stored = res.headers.get('docker-content-digest');
    if (stored && stored !== manifest.digest) {
      throw new SlipwayError(
        'DIGEST_MISMATCH',
        `${this.host}/${repo}:${reference} was stored as ${stored}, not ${manifest.digest}`,
        { resource: `${this.host}/${repo}:${reference}` },
      );
    }
  }

  /** Makes every blob (and child manifest) of `manifest` present in `dst` by mounting from `src`. */
  private async copyReferenced(src: string, dst: string, manifest: FetchedManifest): Promise<void> {
    const doc = JSON.parse(manifest.body.toString('utf8')) as {
      manifests?: Array<{ digest: string }>;
      config?: { digest: string };
      layers?: Array<{ digest: string; urls?: string[] }>;
    };
    for (const child of doc.manifests ?? []) {
      const fetched = await this.getManifest(src, child.digest);
      if (!fetched) {
        throw new SlipwayError('REGISTRY_ERROR', `${this.host}/${src}@${child.digest} is missing`, {
          resource: `${this.host}/${src}@${child.digest}`,
        });
      }
      await this.copyReferenced(src, dst, fetched);
      await this.putManifestAt(dst, child.digest, fetched);
    }
    const blobs = [
      ...(doc.config ? [doc.config.digest] : []),
      // Foreign layers (with urls) are never stored by the registry.
      ...(doc.layers ?? []).filter((l) => !l.urls?.length).map((l) => l.digest),
    ];
    for (const blob of blobs) await this.mountBlob(src, dst, blob);
  }

  private async mountBlob(src: string, dst: string, digest: string): Promise<void> {
    const scopes = [pushPull(dst), pull(src)];
    const head = await this.request('HEAD', `/v2/${dst}/blobs/${digest}`, {
      scopes,
      what: `check blob ${dst}@${digest}`,
    });
    if (head.ok) return;
    const what = `mount blob ${digest} from ${src} into ${dst}`;
    const res = await this.request(
      'POST',
      `/v2/${dst}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(src)}`,
      { scopes, what },
    );
    await res.body?.cancel();
    if (res.status === 201) return;
    if (res.status !== 202) throw await this.statusError(res, what, `${dst}@${digest}`);
    // The registry declined the mount and opened an upload instead: finish it with the bytes.
    const location = res.headers.get('location');
    if (!location) throw new SlipwayError('REGISTRY_ERROR', `${what}: no upload location returned`);
    const blob = await this.request('GET', `/v2/${src}/blobs/${digest}`, {
      scopes,
      what: `read blob ${src}@${digest}`,
    });
    if (!blob.ok) throw await this.statusError(blob, `read blob ${src}@${digest}`, `${src}@${digest}`);
    const bytes = await this.readBody(blob, `read blob ${src}@${digest}`);
    const target = new URL(location, this.base);
    target.searchParams.set('digest', digest);
    const put = await this.request('PUT', target.pathname + target.search, {
      scopes,
      what: `upload blob ${dst}@${digest}`,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    await put.body?.cancel();
    if (!put.ok) throw await this.statusError(put, `upload blob ${dst}@${digest}`, `${dst}@${digest}`);
  }

  private path(repository: string): string {
    return this.prefix ? `${this.prefix}/${repository}` : repository;
  }

  /** One logical request: auth on challenge, retries on transient failures, errors translated. */
  private async request(
    method: string,
    pathAndQuery: string,
    opts: {
      scopes: Scope[];
      what: string;
      headers?: Record<string, string>;
      body?: Buffer | ReadableStream<Uint8Array>;
    },
  ): Promise<Response> {
    const url = `${this.base}${pathAndQuery}`;
    const attempt = async (signal: AbortSignal): Promise<Response> => {
      for (let authTry = 0; ; authTry++) {
        const headers: Record<string, string> = { ...opts.headers };
        const auth = await this.authorization(opts.scopes);
        if (auth) headers.authorization = auth;
        const streamed = opts.body !== undefined && !Buffer.isBuffer(opts.body);
        const res = await (streamed ? this.streamFetchFn : this.fetchFn)(url, {
          method,
          headers,
          signal,
          ...(opts.body ? { body: opts.body } : {}),
          // A streamed body (a blob copied between registries) is sent as it is read.
          ...(opts.body && !Buffer.isBuffer(opts.body) ? { duplex: 'half' } : {}),
        } as RequestInit);
        if (res.status === 401 && authTry === 0) {
          const challenge = parseChallenge(res.headers.get('www-authenticate'));
          await res.body?.cancel();
          if (await this.acceptChallenge(challenge, opts.scopes)) continue;
          return new Response(null, { status: 401 });
        }
        if (isRetryableStatus(res.status)) {
          const detail = await this.errorBody(res);
          throw new RetryableStatusError(
            res.status,
            `${opts.what}: ${this.host} answered ${res.status}${detail}`,
            parseRetryAfter(res.headers.get('retry-after')),
          );
        }
        return res;
      }
    };
    return this.withinDeadline(opts.what, attempt, {
      once: opts.body !== undefined && !Buffer.isBuffer(opts.body),
    });
  }

  /**
   * Runs `attempt` with retries, the whole under the operation deadline: a registry that accepts
   * connections and stops answering fails here, naming the step, instead of holding the run.
   */
  private async withinDeadline<T>(
    what: string,
    attempt: (signal: AbortSignal) => Promise<T>,
    options: { once?: boolean } = {},
  ): Promise<T> {
    // A streamed blob (a copy between registries) may take long while it moves: the idle limit
    // bounds it (no byte for one request limit), the operation deadline does not.
    const deadline = startDeadline(options.once ? STREAM_DEADLINE_MS : this.timeouts.operationMs);
    const started = Date.now();
    let attempts = 0;
    try {
      return await withRetries(
        () => {
          attempts++;
          return attempt(deadline.signal);
        },
        // A stream can be read once: its retry is the caller's (who can open it again).
        { ...this.options.retries, ...(options.once ? { attempts: 1 } : {}), signal: deadline.signal },
      );
    } catch (err) {
      throw this.translate(err, what, { attempts, elapsedMs: Date.now() - started });
    } finally {
      // Only the request and its retries are bounded here; a body is bounded by the idle limit.
      deadline.clear();
    }
  }

  /** Reads a whole body, translating an idle-body time-out like any other failure of the step. */
  private async readBody(res: Response, what: string): Promise<Buffer> {
    const started = Date.now();
    try {
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw this.translate(err, what, { attempts: 1, elapsedMs: Date.now() - started });
    }
  }

  private async authorization(scopes: Scope[]): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basic;
    if (this.scheme === 'bearer') {
      const key = scopes.join(' ');
      const cached = this.tokens.get(key);
      if (cached) return `Bearer ${cached}`;
      return `Bearer ${await this.fetchToken(scopes, undefined)}`;
    }
    return undefined;
  }

  /** Adopts the auth scheme the registry asked for; false when it cannot be satisfied. */
  private async acceptChallenge(challenge: AuthChallenge | null, scopes: Scope[]): Promise<boolean> {
    if (challenge?.scheme === 'basic') {
      if (!this.basic || this.scheme === 'basic') return false;
      this.scheme = 'basic';
      return true;
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      this.scheme = 'bearer';
      this.bearer = { realm: challenge.params.realm, service: challenge.params.service };
      await this.fetchToken(scopes, challenge.params.scope);
      return true;
    }
    return false;
  }

  private async fetchToken(scopes: Scope[], extraScope: string | undefined): Promise<string> {
    const bearer = this.bearer;
    if (!bearer) throw new SlipwayError('REGISTRY_ERROR', `${this.host}: no token realm known`);
    const realm = new URL(bearer.realm);
    if (bearer.service) realm.searchParams.set('service', bearer.service);
    for (const s of new Set([...scopes, ...(extraScope ? extraScope.split(' ') : [])])) {
      realm.searchParams.append('scope', s);
    }
    const what = `get a token from ${realm.origin}${realm.pathname}`;
    const res = await this.withinDeadline(what, async (signal) => {
      const r = await this.fetchFn(realm, {
        headers: this.basic ? { authorization: this.basic } : {},
        signal,
      });
      if (isRetryableStatus(r.status)) {
        await r.body?.cancel();
        throw new RetryableStatusError(r.status, `${what}: answered ${r.status}`, undefined);
      }
      return r;
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new SlipwayError('REGISTRY_ERROR', `${what}: denied (${res.status})`, {
        resource: this.host,
        hint: 'check SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD',
      });
    }
    const json = (await res.json()) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token) throw new SlipwayError('REGISTRY_ERROR', `${what}: the answer holds no token`);
    this.redactor.add(token);
    this.tokens.set(scopes.join(' '), token);
    return token;
  }

  private async errorBody(res: Response): Promise<string> {
    try {
      const text = (await res.text()).trim();
      return text ? `: ${this.redactor.redact(text.slice(0, 300))}` : '';
    } catch {
      return '';
    }
  }

  private async statusError(res: Response, what: string, resource: string): Promise<SlipwayError> {
    const detail = await this.errorBody(res);
    const full = `${this.host}/${resource}`;
    if (res.status === 401) {
      return new SlipwayError('REGISTRY_ERROR', `${what}: ${this.host} refused the credentials (401)`, {
        resource: full,
        hint: this.basic
          ? 'check SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD'
          : 'the registry needs credentials: set SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD',
      });
    }
    if (res.status === 403) {
      return new SlipwayError('REGISTRY_ERROR', `${what}: access denied by ${this.host} (403)${detail}`, {
        resource: full,
        hint: 'the credentials lack pull/push permission on this repository',
      });
    }
    return new SlipwayError('REGISTRY_ERROR', `${what}: ${this.host} answered ${res.status}${detail}`, {
      resource: full,
    });
  }

  private translate(
    err: unknown,
    what: string,
    tried: { attempts: number; elapsedMs: number } = { attempts: 1, elapsedMs: 0 },
  ): SlipwayError {
    if (err instanceof SlipwayError) return err;
    if (isTimeout(err)) {
      const { attempts, elapsedMs } = tried;
      const limit = Math.min(this.timeouts.requestMs, this.timeouts.operationMs);
      return new SlipwayError(
        'REGISTRY_UNREACHABLE',
        `${what}: registry ${this.host} did not answer within ${formatDuration(limit)} (${attempts} attempt${attempts === 1 ? '' : 's'} in ${formatDuration(elapsedMs)})`,
        {
          resource: this.host,
          hint: 'the registry (or a proxy in front of it) accepts connections but stopped answering: check its health; --timeout or SLIPWAY_TIMEOUT sets the limit per request',
        },
      );
    }
    if (err instanceof RetryableStatusError) {
      return new SlipwayError(
        'REGISTRY_ERROR',
        `${this.redactor.redact(err.message)} (gave up after ${this.options.retries?.attempts ?? 4} attempts)`,
        { resource: this.host, hint: 'the registry is failing; retry later' },
      );
    }
    const cause = (err as { cause?: unknown }).cause;
    const reason = this.redactor.redact(messageOf(cause ?? err));
    if (isUnreachable(err)) {
      return new SlipwayError(
        'REGISTRY_UNREACHABLE',
        `${what}: registry ${this.base} is unreachable (${reason})`,
        {
          resource: this.host,
          hint: 'is the registry running and the --registry URL right?',
        },
      );
    }
    return new SlipwayError('REGISTRY_ERROR', `${what}: ${this.base}: ${reason}`, {
      resource: this.host,
      hint: this.base.startsWith('https')
        ? 'if the registry speaks plain http, it must be on loopback (or force plain http)'
        : undefined,
    });
  }
}
