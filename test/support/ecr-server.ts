/**
 * A loopback server speaking the ECR JSON 1.1 protocol (the calls Slipway makes), backed by a
 * real registry through the Distribution API, so the real `@aws-sdk/client-ecr` drives it and
 * images pushed with its token really land. A registry has no repository objects, so this
 * server keeps the repositories (and their settings) itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** A repository the server knows. */
export interface EcrTestRepository {
  readonly scanOnPush: boolean;
  readonly tagMutability: 'MUTABLE' | 'IMMUTABLE';
}

class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** A running test ECR endpoint. */
export class EcrTestServer {
  readonly repositories = new Map<string, EcrTestRepository>();
  /** Every operation called, in order (e.g. `DescribeRepositories`). */
  readonly calls: string[] = [];
  /** The registry password inside the authorization token. */
  readonly password = `ecr-secret-${randomBytes(12).toString('hex')}`;
  /** Referrers recorded from PutImage manifests with a `subject`, by `repository@subject digest`. */
  readonly referrers = new Map<string, Array<Record<string, unknown>>>();
  /** Paths the Distribution API side served (with `distribution: true`). */
  readonly distributionRequests: string[] = [];
  private readonly uploads = new Map<string, { repository: string; parts: Buffer[] }>();
  private serveDistribution = false;
  private constructor(
    private readonly server: http.Server,
    readonly account: string,
    /** host:port of the backing registry (Distribution API). */
    private readonly registry: string,
    /** What GetAuthorizationToken returns as proxyEndpoint. */
    readonly proxyEndpoint: string,
  ) {}

  /** Starts on a free loopback port, backed by `registry` (host:port); images are pushed to `proxyEndpoint`. */
  static async start(options: {
    registry: string;
    proxyEndpoint?: string;
    account?: string;
    /**
     * Serve the Distribution API too (proxied to the backing registry), with the OCI referrers
     * API answered from the manifests PutImage stored: proxyEndpoint becomes this server.
     */
    distribution?: boolean;
  }): Promise<EcrTestServer> {
    let self: EcrTestServer | undefined;
    const server = http.createServer((req, res) => {
      void self?.handle(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const own = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    self = new EcrTestServer(
      server,
      options.account ?? '123456789012',
      options.registry,
      options.proxyEndpoint ?? (options.distribution ? own : `http://${options.registry}`),
    );
    self.serveDistribution = options.distribution ?? false;
    return self;
  }

  /** The endpoint URL to hand the SDK (`endpoint` / `AWS_ENDPOINT_URL_ECR`). */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** The base64 authorization token GetAuthorizationToken returns. */
  get token(): string {
    return Buffer.from(`AWS:${this.password}`).toString('base64');
  }

  /** Stops the server. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.serveDistribution && (req.url ?? '').startsWith('/v2/')) {
      this.distribution(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown, type?: string) => {
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        ...(type ? { 'x-amzn-errortype': type } : {}),
      });
      res.end(JSON.stringify(body));
    };
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.replace(/^AmazonEC2ContainerRegistry_V20150921\./, '');
    this.calls.push(op);
    try {
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) {
        throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
      }
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      send(200, await this.dispatch(op, input));
    } catch (err) {
      if (err instanceof AwsError) send(400, { __type: err.type, message: err.message }, err.type);
      else send(500, { __type: 'ServerException', message: String(err) }, 'ServerException');
    }
  }

  /** The Distribution API side: the referrers API from memory, everything else proxied. */
  private distribution(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    this.distributionRequests.push(`${req.method} ${url}`);
    const m = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})(?:\?(.*))?$/.exec(url);
    if (m && req.method === 'GET') {
      req.resume();
      const type = new URLSearchParams(m[3] ?? '').get('artifactType');
      const all = this.referrers.get(`${m[1]}@${m[2]}`) ?? [];
      const manifests = type ? all.filter((d) => d.artifactType === type) : all;
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(type ? { 'oci-filters-applied': 'artifactType' } : {}),
      });
      res.end(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
      );
      return;
    }
    const [host, port] = this.registry.split(':');
    const headers = { ...req.headers };
    delete headers.authorization;
    const up = http.request({ host, port: Number(port), method: req.method, path: url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  }

  private repo(name: unknown): EcrTestRepository {
    const repo = this.repositories.get(String(name));
    if (!repo) {
      throw new AwsError(
        'RepositoryNotFoundException',
        `The repository with name '${String(name)}' does not exist in the registry with id '${this.account}'`,
      );
    }
    return repo;
  }

  private describe(name: string, repo: EcrTestRepository) {
    return {
      registryId: this.account,
      repositoryName: name,
      repositoryArn: `arn:aws:ecr:us-east-1:${this.account}:repository/${name}`,
      repositoryUri: `${this.account}.dkr.ecr.us-east-1.amazonaws.com/${name}`,
      createdAt: Date.now() / 1000,
      imageTagMutability: repo.tagMutability,
      imageScanningConfiguration: { scanOnPush: repo.scanOnPush },
    };
  }

  private async dispatch(op: string, input: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'GetAuthorizationToken':
        return {
          authorizationData: [
            {
              authorizationToken: this.token,
              expiresAt: Date.now() / 1000 + 12 * 3600,
              proxyEndpoint: this.proxyEndpoint,
            },
          ],
        };
      case 'DescribeRepositories': {
        const names = (input.repositoryNames as string[] | undefined) ?? [...this.repositories.keys()];
        return { repositories: names.map((n) => this.describe(n, this.repo(n))) };
      }
      case 'CreateRepository': {
        const name = String(input.repositoryName);
        if (this.repositories.has(name)) {
          throw new AwsError(
            'RepositoryAlreadyExistsException',
            `The repository with name '${name}' already exists`,
          );
        }
        const scanning = input.imageScanningConfiguration as { scanOnPush?: boolean } | undefined;
        const repo: EcrTestRepository = {
          scanOnPush: scanning?.scanOnPush ?? false,
          tagMutability: (input.imageTagMutability as 'MUTABLE' | 'IMMUTABLE' | undefined) ?? 'MUTABLE',
        };
        this.repositories.set(name, repo);
        return { repository: this.describe(name, repo) };
      }
      case 'BatchGetImage': {
        const name = String(input.repositoryName);
        this.repo(name);
        const images: unknown[] = [];
        const failures: unknown[] = [];
        for (const id of (input.imageIds as Array<{ imageTag?: string; imageDigest?: string }>) ?? []) {
          const got = await this.getManifest(name, id.imageDigest ?? id.imageTag ?? '');
          if (!got) {
            failures.push({
              imageId: id,
              failureCode: id.imageDigest ? 'ImageNotFound' : 'ImageTagDoesNotExist',
              failureReason: 'Requested image not found',
            });
            continue;
          }
          images.push({
            registryId: this.account,
            repositoryName: name,
            imageId: { imageDigest: got.digest, ...(id.imageTag ? { imageTag: id.imageTag } : {}) },
            imageManifest: got.body,
            imageManifestMediaType: got.mediaType,
          });
        }
        return { images, failures };
      }
      case 'PutImage': {
        const name = String(input.repositoryName);
        const repo = this.repo(name);
        const body = String(input.imageManifest);
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        const tag = input.imageTag === undefined ? digest : String(input.imageTag);
        if (input.imageDigest && input.imageDigest !== digest) {
          throw new AwsError('ReferencedImagesNotFoundException', 'imageDigest does not match the manifest');
        }
        const current = await this.getManifest(name, tag);
        if (current?.digest === digest) {
          throw new AwsError(
            'ImageAlreadyExistsException',
            `Image with digest '${digest}' and tag '${tag}' already exists in the repository`,
          );
        }
        if (current && repo.tagMutability === 'IMMUTABLE') {
          throw new AwsError('ImageTagAlreadyExistsException', `The image tag '${tag}' already exists`);
        }
        const mediaType =
          (input.imageManifestMediaType as string | undefined) ??
          (JSON.parse(body) as { mediaType?: string }).mediaType ??
          'application/vnd.docker.distribution.manifest.v2+json';
        const res = await fetch(`http://${this.registry}/v2/${name}/manifests/${tag}`, {
          method: 'PUT',
          headers: { 'content-type': mediaType },
          body,
        });
        const text = await res.text();
        if (res.status === 400 && text.includes('BLOB_UNKNOWN')) {
          throw new AwsError(
            'LayersNotFoundException',
            `Layers referenced by the manifest are not in '${name}'`,
          );
        }
        if (!res.ok) throw new Error(`registry answered ${res.status}: ${text}`);
        const doc = JSON.parse(body) as {
          subject?: { digest: string };
          artifactType?: string;
          annotations?: unknown;
        };
        if (doc.subject) {
          const key = `${name}@${doc.subject.digest}`;
          const list = this.referrers.get(key) ?? [];
          if (!list.some((d) => d.digest === digest)) {
            list.push({
              mediaType,
              digest,
              size: Buffer.byteLength(body),
              ...(doc.artifactType ? { artifactType: doc.artifactType } : {}),
              ...(doc.annotations ? { annotations: doc.annotations } : {}),
            });
          }
          this.referrers.set(key, list);
        }
        return {
          image: {
            registryId: this.account,
            repositoryName: name,
            imageId: { imageDigest: digest, imageTag: tag },
            imageManifest: body,
            imageManifestMediaType: mediaType,
          },
        };
      }
      case 'DescribeImages': {
        const name = String(input.repositoryName);
        this.repo(name);
        const wanted = (input.imageIds as Array<{ imageDigest?: string }> | undefined)?.map(
          (i) => i.imageDigest,
        );
        const images = await this.images(name);
        const details = [];
        for (const [digest, tags] of images) {
          if (wanted && !wanted.includes(digest)) continue;
          details.push({
            registryId: this.account,
            repositoryName: name,
            imageDigest: digest,
            imageTags: tags,
            imagePushedAt: (await this.pushedAt(name, digest)) / 1000,
          });
        }
        if (wanted && details.length < wanted.length) {
          throw new AwsError(
            'ImageNotFoundException',
            'The image requested does not exist in the specified repository.',
          );
        }
        return { imageDetails: details };
      }
      case 'BatchCheckLayerAvailability': {
        const name = String(input.repositoryName);
        this.repo(name);
        const layers = [];
        for (const d of (input.layerDigests as string[]) ?? []) {
          const res = await fetch(`http://${this.registry}/v2/${name}/blobs/${d}`, { method: 'HEAD' });
          layers.push({ layerDigest: d, layerAvailability: res.ok ? 'AVAILABLE' : 'UNAVAILABLE' });
        }
        return { layers, failures: [] };
      }
      case 'InitiateLayerUpload': {
        const name = String(input.repositoryName);
        this.repo(name);
        const uploadId = randomBytes(8).toString('hex');
        this.uploads.set(uploadId, { repository: name, parts: [] });
        return { uploadId, partSize: 5 * 1024 * 1024 };
      }
      case 'UploadLayerPart': {
        const upload = this.uploads.get(String(input.uploadId));
        if (!upload) throw new AwsError('UploadNotFoundException', 'no such upload');
        upload.parts.push(Buffer.from(String(input.layerPartBlob), 'base64'));
        return { uploadId: input.uploadId, lastByteReceived: Number(input.partLastByte) };
      }
      case 'CompleteLayerUpload': {
        const upload = this.uploads.get(String(input.uploadId));
        if (!upload) throw new AwsError('UploadNotFoundException', 'no such upload');
        this.uploads.delete(String(input.uploadId));
        const bytes = Buffer.concat(upload.parts);
        const digest = (input.layerDigests as string[])[0] ?? '';
        if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) {
          throw new AwsError('InvalidLayerException', 'the layer digest does not match the uploaded bytes');
        }
        const start = await fetch(`http://${this.registry}/v2/${upload.repository}/blobs/uploads/`, {
          method: 'POST',
        });
        await start.arrayBuffer();
        const target = new URL(start.headers.get('location') ?? '', `http://${this.registry}`);
        target.searchParams.set('digest', digest);
        const put = await fetch(target, {
          method: 'PUT',
          body: bytes,
          headers: { 'content-type': 'application/octet-stream' },
        });
        if (!put.ok) throw new Error(`registry answered ${put.status}: ${await put.text()}`);
        return { uploadId: input.uploadId, layerDigest: digest };
      }
      default:
        throw new AwsError(
          'UnknownOperationException',
          `operation ${op} is not supported by the test server`,
        );
    }
  }

  /** The repository's tagged images: digest -> tags (untagged manifests are invisible through the Distribution API). */
  private async images(repo: string): Promise<Map<string, string[]>> {
    const res = await fetch(`http://${this.registry}/v2/${repo}/tags/list`);
    const out = new Map<string, string[]>();
    if (res.status === 404) return out;
    const tags = ((await res.json()) as { tags?: string[] | null }).tags ?? [];
    for (const tag of tags) {
      const got = await this.getManifest(repo, tag);
      if (got) out.set(got.digest, [...(out.get(got.digest) ?? []), tag]);
    }
    return out;
  }

  /**
   * The push time ECR would report. The backing registry records none, so the image config's
   * `created` stands in for it (in these tests an image is pushed right after it is built).
   */
  private async pushedAt(repo: string, digest: string): Promise<number> {
    const manifest = await this.getManifest(repo, digest);
    const config = manifest
      ? (JSON.parse(manifest.body) as { config?: { digest?: string } }).config
      : undefined;
    if (!config?.digest) return Date.now();
    const res = await fetch(`http://${this.registry}/v2/${repo}/blobs/${config.digest}`);
    const created = res.ok ? ((await res.json()) as { created?: string }).created : undefined;
    return created ? Date.parse(created) : Date.now();
  }

  private async getManifest(
    repo: string,
    reference: string,
  ): Promise<{ digest: string; body: string; mediaType: string } | null> {
    const res = await fetch(`http://${this.registry}/v2/${repo}/manifests/${reference}`, {
      headers: { accept: MANIFEST_TYPES },
    });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`registry answered ${res.status}`);
    const body = await res.text();
    return {
      digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      body,
      mediaType: res.headers.get('content-type') ?? 'application/vnd.docker.distribution.manifest.v2+json',
    };
  }
}
