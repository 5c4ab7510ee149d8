import { createRequire } from 'node:module';
import type * as EcrSdk from '@aws-sdk/client-ecr';
import type { DescribeImagesCommandOutput, ECRClient, ECRClientConfig } from '@aws-sdk/client-ecr';
import type * as SmithyHttp from '@smithy/node-http-handler';
import { isUnreachable, messageOf, SlipwayError } from '../core/errors.js';
import { ImageRef } from '../core/image-ref.js';
import { Redactor } from '../core/redact.js';
import { DEFAULT_TIMEOUTS, isTimeout, type Timeouts } from '../core/timeouts.js';
import {
  configDigestOf,
  isCosignArtifactTag,
  MANIFEST_MEDIA_TYPES,
  OciRegistry,
  sha256Digest,
} from './oci.js';
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
import type { RegistryUrl } from './url.js';

// The AWS SDK (CommonJS) loads when an ECR client is first built, not with the library.
const requireHere = createRequire(import.meta.url);
const sdk = (): typeof EcrSdk => requireHere('@aws-sdk/client-ecr') as typeof EcrSdk;

/** The ECR calls Slipway makes, and nothing else; {@link sdkEcrApi} implements it over the AWS SDK. */
export interface EcrApi {
  getAuthorizationToken(registryId: string): Promise<{
    /** base64 of `AWS:<password>`. */
    token: string;
    proxyEndpoint: string;
    expiresAt: Date | undefined;
  }>;
  /** Throws the SDK's RepositoryNotFoundException when the repository does not exist. */
  describeRepository(registryId: string, repository: string): Promise<void>;
  createRepository(registryId: string, repository: string, settings: RepositorySettings): Promise<void>;
  /** The image with that tag or digest, or null when ECR reports it missing. */
  batchGetImage(
    registryId: string,
    repository: string,
    id: { imageTag: string } | { imageDigest: string },
  ): Promise<{ digest: string; manifest: string; mediaType: string | undefined } | null>;
  putImage(
    registryId: string,
    repository: string,
    image: { manifest: string; mediaType: string | undefined; tag: string; digest: string },
  ): Promise<void>;
  /**
   * Every image of the repository (all pages), or only `digests` (a missing one is left out).
   * Throws the SDK's RepositoryNotFoundException when the repository does not exist.
   */
  describeImages(
    registryId: string,
    repository: string,
    digests?: readonly string[],
  ): Promise<Array<{ digest: string; tags: string[]; pushedAt: Date | undefined }>>;
  /** PutImage with an optional tag (an untagged manifest, e.g. an attestation referrer). */
  putManifest(
    registryId: string,
    repository: string,
    image: { manifest: string; mediaType: string; tag: string | undefined; digest: string },
  ): Promise<void>;
  /** BatchCheckLayerAvailability for one blob: true when ECR holds it. */
  layerAvailable(registryId: string, repository: string, digest: string): Promise<boolean>;
  /**
   * Uploads a blob with the layer upload API (InitiateLayerUpload, UploadLayerPart in ECR's part
   * size, CompleteLayerUpload); a blob ECR already holds is not an error.
   */
  uploadLayer(
    registryId: string,
    repository: string,
    digest: string,
    content: AsyncIterable<Uint8Array>,
  ): Promise<void>;
}

/** {@link EcrApi} over an `@aws-sdk/client-ecr` client. */
export function sdkEcrApi(client: ECRClient): EcrApi {
  return {
    async getAuthorizationToken(registryId) {
      const out = await client.send(new (sdk().GetAuthorizationTokenCommand)({ registryIds: [registryId] }));
      const data = out.authorizationData?.[0];
      if (!data?.authorizationToken || !data.proxyEndpoint) {
        throw new SlipwayError(
          'REGISTRY_ERROR',
          `ECR returned no authorization data for account ${registryId}`,
        );
      }
      return { token: data.authorizationToken, proxyEndpoint: data.proxyEndpoint, expiresAt: data.expiresAt };
    },
    async describeRepository(registryId, repository) {
      await client.send(
        new (sdk().DescribeRepositoriesCommand)({ registryId, repositoryNames: [repository] }),
      );
    },
    async createRepository(registryId, repository, settings) {
      await client.send(
        new (sdk().CreateRepositoryCommand)({
          registryId,
          repositoryName: repository,
          imageScanningConfiguration: { scanOnPush: settings.scanOnPush },
          imageTagMutability: settings.tagMutability,
        }),
      );
    },
    async batchGetImage(registryId, repository, id) {
      const out = await client.send(
        new (sdk().BatchGetImageCommand)({
          registryId,
          repositoryName: repository,
          imageIds: [id],
          acceptedMediaTypes: [...MANIFEST_MEDIA_TYPES],
        }),
      );
      const image = out.images?.[0];
      if (!image?.imageId?.imageDigest || !image.imageManifest) return null;
      return {
        digest: image.imageId.imageDigest,
        manifest: image.imageManifest,
        mediaType: image.imageManifestMediaType,
      };
    },
    async describeImages(registryId, repository, digests) {
      const out: Array<{ digest: string; tags: string[]; pushedAt: Date | undefined }> = [];
      let nextToken: string | undefined;
      do {
        let page: DescribeImagesCommandOutput;
        try {
          page = await client.send(
            new (sdk().DescribeImagesCommand)({
              registryId,
              repositoryName: repository,
              ...(digests ? { imageIds: digests.map((imageDigest) => ({ imageDigest })) } : {}),
              ...(nextToken ? { nextToken } : {}),
            }),
          );
        } catch (err) {
          // Asked for digests, ECR fails the whole call when one is missing: that is "not there".
          if (digests && nameOf(err) === 'ImageNotFoundException') return out;
          throw err;
        }
        for (const d of page.imageDetails ?? []) {
          if (d.imageDigest)
            out.push({ digest: d.imageDigest, tags: d.imageTags ?? [], pushedAt: d.imagePushedAt });
        }
        nextToken = page.nextToken;
      } while (nextToken);
      return out;
    },
    async putManifest(registryId, repository, image) {
      await client.send(
        new (sdk().PutImageCommand)({
          registryId,
          repositoryName: repository,
          imageManifest: image.manifest,
          imageManifestMediaType: image.mediaType,
          ...(image.tag === undefined ? {} : { imageTag: image.tag }),
          imageDigest: image.digest,
        }),
      );
    },
    async layerAvailable(registryId, repository, digest) {
      const out = await client.send(
        new (sdk().BatchCheckLayerAvailabilityCommand)({
          registryId,
          repositoryName: repository,
          layerDigests: [digest],
        }),
      );
      return out.layers?.[0]?.layerAvailability === 'AVAILABLE';
    },
    async uploadLayer(registryId, repository, digest, content) {
      const started = await client.send(
        new (sdk().InitiateLayerUploadCommand)({ registryId, repositoryName: repository }),
      );
      const uploadId = started.uploadId;
      if (!uploadId) throw new SlipwayError('REGISTRY_ERROR', `ECR opened no upload for ${repository}`);
      const partSize = Math.max(started.partSize ?? 0, 5 * 1024 * 1024);
      let offset = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const part = Buffer.concat(pending);
        await client.send(
          new (sdk().UploadLayerPartCommand)({
            registryId,
            repositoryName: repository,
            uploadId,
            partFirstByte: offset,
            partLastByte: offset + part.length - 1,
            layerPartBlob: part,
          }),
        );
        offset += part.length;
        pending = [];
        pendingBytes = 0;
      };
      for await (const chunk of content) {
        pending.push(Buffer.from(chunk));
        pendingBytes += chunk.length;
        if (pendingBytes >= partSize) await flush();
      }
      await flush();
      try {
        await client.send(
          new (sdk().CompleteLayerUploadCommand)({
            registryId,
            repositoryName: repository,
            uploadId,
            layerDigests: [digest],
          }),
        );
      } catch (err) {
        if (nameOf(err) !== 'LayerAlreadyExistsException') throw err;
      }
    },
    async putImage(registryId, repository, image) {
      await client.send(
        new (sdk().PutImageCommand)({
          registryId,
          repositoryName: repository,
          imageManifest: image.manifest,
          imageManifestMediaType: image.mediaType,
          imageTag: image.tag,
          imageDigest: image.digest,
        }),
      );
    },
  };
}

/** Builds an ECR client for the region (bounded attempts, each request under `timeouts.requestMs`), with endpoint and static credentials from `env` when it sets them. */
export function ecrClientFor(
  region: string,
  env: NodeJS.ProcessEnv | undefined,
  maxAttempts: number,
  timeouts: Timeouts = DEFAULT_TIMEOUTS,
): ECRClient {
  const config: ECRClientConfig = {
    region,
    maxAttempts,
    // The SDK's default handler waits forever for a socket that accepted and went quiet.
    requestHandler: new (requireHere('@smithy/node-http-handler') as typeof SmithyHttp).NodeHttpHandler({
      connectionTimeout: timeouts.requestMs,
      requestTimeout: timeouts.requestMs,
    }),
  };
  // The SDK reads process.env itself; an explicit env (the CLI's, a test's) must win over it.
  const endpoint = env?.AWS_ENDPOINT_URL_ECR ?? env?.AWS_ENDPOINT_URL;
  if (endpoint) config.endpoint = endpoint;
  if (env?.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return new (sdk().ECRClient)(config);
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'AccessDeniedException',
  'AccessDeniedFault',
]);

/** Amazon ECR: auth, repositories and manifests through the ECR API; images through the engine. */
export class EcrRegistry implements Registry {
  readonly url: string;
  private readonly account: string;
  private readonly region: string;
  private auth: { engine: EngineAuth; host: string; expiresAt: number } | undefined;
  private distribution: OciRegistry | undefined;

  private constructor(
    url: Extract<RegistryUrl, { kind: 'ecr' }>,
    private readonly api: EcrApi,
    private readonly redactor: Redactor,
  ) {
    this.url = url.url;
    this.account = url.account;
    this.region = url.region;
  }

  /** Opens the registry: fetches an authorization token, which also names the host images are pushed to. */
  static async open(
    url: Extract<RegistryUrl, { kind: 'ecr' }>,
    api: EcrApi,
    redactor: Redactor = new Redactor(),
  ): Promise<EcrRegistry> {
    const registry = new EcrRegistry(url, api, redactor);
    await registry.engineAuth();
    return registry;
  }

  private get host(): string {
    if (!this.auth) throw new Error('EcrRegistry used before open()');
    return this.auth.host;
  }

  imageName(repository: string): ImageRef {
    return ImageRef.of({ registry: this.host, repository });
  }

  repositoryOf(ref: ImageRef): string | null {
    return ref.registry === this.host ? ref.repository : null;
  }

  async engineAuth(): Promise<EngineAuth> {
    // ECR tokens last 12 hours; renew a little early so a long push never starts with a stale one.
    if (this.auth && this.auth.expiresAt - 5 * 60_000 > Date.now()) return this.auth.engine;
    const data = await this.call('get an ECR authorization token', this.url, () =>
      this.api.getAuthorizationToken(this.account),
    );
    this.redactor.add(data.token);
    const decoded = Buffer.from(data.token, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    this.redactor.add(password);
    const endpoint = new URL(
      data.proxyEndpoint.includes('://') ? data.proxyEndpoint : `https://${data.proxyEndpoint}`,
    );
    this.auth = {
      engine: { username, password, serveraddress: data.proxyEndpoint },
      host: endpoint.host,
      expiresAt: data.expiresAt?.getTime() ?? Date.now() + 3600_000,
    };
    return this.auth.engine;
  }

  async ensureRepository(
    repository: string,
    options: { create: boolean; settings: RepositorySettings },
  ): Promise<void> {
    try {
      await this.call(`describe ECR repository ${repository}`, repository, () =>
        this.api.describeRepository(this.account, repository),
      );
      return;
    } catch (err) {
      if (!(err instanceof SlipwayError && err.code === 'REPOSITORY_NOT_FOUND') || !options.create) throw err;
    }
    try {
      await this.call(`create ECR repository ${repository}`, repository, () =>
        this.api.createRepository(this.account, repository, options.settings),
      );
    } catch (err) {
      // Another run created it between our two calls: that is what we wanted.
      if (
        (err as SlipwayError).cause &&
        nameOf((err as SlipwayError).cause) === 'RepositoryAlreadyExistsException'
      )
        return;
      throw err;
    }
  }

  async resolve(repository: string, tag: string): Promise<string | null> {
    try {
      const image = await this.call(`resolve ${repository}:${tag}`, `${repository}:${tag}`, () =>
        this.api.batchGetImage(this.account, repository, { imageTag: tag }),
      );
      return image?.digest ?? null;
    } catch (err) {
      if (err instanceof SlipwayError && err.code === 'REPOSITORY_NOT_FOUND') return null;
      throw err;
    }
  }

  async configDigest(repository: string, digest: string): Promise<string | null> {
    const image = await this.call(`read ${repository}@${digest}`, `${repository}@${digest}`, () =>
      this.api.batchGetImage(this.account, repository, { imageDigest: digest }),
    );
    return image ? configDigestOf(image.manifest) : null;
  }

  async putTag(repository: string, digest: string, tag: string, options: PutTagOptions = {}): Promise<void> {
    const from = options.from ?? repository;
    const image = await this.call(`read ${from}@${digest}`, `${from}@${digest}`, () =>
      this.api.batchGetImage(this.account, from, { imageDigest: digest }),
    );
    if (!image) {
      throw new SlipwayError('REGISTRY_ERROR', `${this.host}/${from}@${digest} does not exist`, {
        resource: `${this.host}/${from}@${digest}`,
        hint: 'push the image first, or check the digest',
      });
    }
    try {
      await this.call(`tag ${repository}:${tag}`, `${repository}:${tag}`, () =>
        this.api.putImage(this.account, repository, {
          manifest: image.manifest,
          mediaType: image.mediaType,
          tag,
          digest,
        }),
      );
    } catch (err) {
      const cause = nameOf((err as { cause?: unknown }).cause);
      // ECR refuses a PutImage that changes nothing; the tag already points where we want.
      if (cause === 'ImageAlreadyExistsException' && (await this.resolve(repository, tag)) === digest) return;
      if (cause === 'LayersNotFoundException') {
        throw new SlipwayError(
          'REGISTRY_ERROR',
          `cannot tag ${this.host}/${repository}:${tag}: the layers of ${digest} are not in ${repository}`,
          {
            resource: `${this.host}/${repository}:${tag}`,
            hint: 'ECR copies manifests only within a repository; push the image to the target repository first',
            cause: err,
          },
        );
      }
      throw err;
    }
  }

  /** DescribeImages: every image of the repository, with ECR's own push times. */
  async describeRepository(repository: string): Promise<RepositoryInfo> {
    let images: Awaited<ReturnType<EcrApi['describeImages']>>;
    try {
      images = await this.call(`describe the images of ${repository}`, repository, () =>
        this.api.describeImages(this.account, repository),
      );
    } catch (err) {
      if (err instanceof SlipwayError && err.code === 'REPOSITORY_NOT_FOUND') {
        return { exists: false, imageCount: null, newestPush: null, newestPushSource: null };
      }
      throw err;
    }
    // Attestations kept under cosign's tags are artifacts of an image, not images.
    images = images.filter((i) => i.tags.length === 0 || !i.tags.every(isCosignArtifactTag));
    const times = images.flatMap((i) => (i.pushedAt ? [i.pushedAt.getTime()] : []));
    const newest = times.length > 0 ? new Date(Math.max(...times)).toISOString() : null;
    return {
      exists: true,
      imageCount: images.length,
      newestPush: newest,
      newestPushSource: newest === null ? null : 'pushed',
    };
  }

  /** The manifest and config through the Distribution API (ECR serves it with the token), the push time through DescribeImages. */
  async imageDetails(repository: string, reference: string): Promise<ImageDetails | null> {
    const details = await (await this.distributionApi()).imageDetails(repository, reference);
    if (!details) return null;
    let described: Awaited<ReturnType<EcrApi['describeImages']>> = [];
    try {
      described = await this.call(`describe ${repository}@${details.digest}`, repository, () =>
        this.api.describeImages(this.account, repository, [details.digest]),
      );
    } catch (err) {
      if (!(err instanceof SlipwayError && err.code === 'REPOSITORY_NOT_FOUND')) throw err;
    }
    return { ...details, pushedAt: described[0]?.pushedAt?.toISOString() ?? null };
  }

  /** BatchGetImage by tag or digest (a digest is checked against the bytes ECR returns). */
  async manifest(repository: string, reference: string): Promise<RegistryManifest | null> {
    const id = reference.startsWith('sha256:') ? { imageDigest: reference } : { imageTag: reference };
    let image: Awaited<ReturnType<EcrApi['batchGetImage']>>;
    try {
      image = await this.call(`read ${repository}@${reference}`, `${repository}@${reference}`, () =>
        this.api.batchGetImage(this.account, repository, id),
      );
    } catch (err) {
      if (err instanceof SlipwayError && err.code === 'REPOSITORY_NOT_FOUND') return null;
      throw err;
    }
    if (!image) return null;
    const body = Buffer.from(image.manifest, 'utf8');
    const digest = sha256Digest(body);
    if (digest !== image.digest) {
      throw new SlipwayError(
        'DIGEST_MISMATCH',
        `${this.host}/${repository}@${reference}: the manifest ECR returned hashes to ${digest}, not ${image.digest}`,
        { resource: `${this.host}/${repository}@${reference}` },
      );
    }
    const mediaType =
      image.mediaType ??
      (JSON.parse(image.manifest) as { mediaType?: string }).mediaType ??
      MANIFEST_MEDIA_TYPES[0];
    return { digest, mediaType, body };
  }

  /** PutImage, under a tag or untagged (a digest reference); an unchanged tag is not an error. */
  async putManifest(
    repository: string,
    reference: string,
    manifest: { readonly mediaType: string; readonly body: Buffer },
  ): Promise<string> {
    const digest = sha256Digest(manifest.body);
    const tag = reference.startsWith('sha256:') ? undefined : reference;
    if (tag === undefined && reference !== digest) {
      throw new SlipwayError(
        'DIGEST_MISMATCH',
        `${repository}@${reference}: the manifest hashes to ${digest}`,
      );
    }
    try {
      await this.call(`write ${repository}:${reference}`, `${repository}:${reference}`, () =>
        this.api.putManifest(this.account, repository, {
          manifest: manifest.body.toString('utf8'),
          mediaType: manifest.mediaType,
          tag,
          digest,
        }),
      );
    } catch (err) {
      if (nameOf((err as { cause?: unknown }).cause) !== 'ImageAlreadyExistsException') throw err;
    }
    return digest;
  }

  /** BatchCheckLayerAvailability. */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    return this.call(`check blob ${repository}@${digest}`, `${repository}@${digest}`, () =>
      this.api.layerAvailable(this.account, repository, digest),
    );
  }

  /** Through the Distribution API with the ECR token. */
  async readBlob(repository: string, digest: string): Promise<Buffer | null> {
    return (await this.distributionApi()).readBlob(repository, digest);
  }

  /** Through the Distribution API with the ECR token. */
  async openBlob(repository: string, digest: string): Promise<BlobStream | null> {
    return (await this.distributionApi()).openBlob(repository, digest);
  }

  /** The ECR layer upload API (InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload). */
  async putBlob(repository: string, digest: string, content: Buffer | BlobStream): Promise<void> {
    const chunks: AsyncIterable<Uint8Array> = Buffer.isBuffer(content)
      ? (async function* () {
          yield content;
        })()
      : (content.body as unknown as AsyncIterable<Uint8Array>);
    await this.call(`upload blob ${repository}@${digest}`, `${repository}@${digest}`, () =>
      this.api.uploadLayer(this.account, repository, digest, chunks),
    );
  }

  /** A Distribution API mount (ECR honours it where cross-repository mounting is enabled). */
  async tryMountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    try {
      return await (await this.distributionApi()).tryMountBlob(repository, digest, from);
    } catch {
      // ECR without blob mounting refuses the POST: copying the bytes is the fallback.
      return false;
    }
  }

  /** The OCI 1.1 referrers API, which ECR serves through the Distribution API. */
  async referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[] | null> {
    return (await this.distributionApi()).referrers(repository, digest, artifactType);
  }

  /** An OCI client for the ECR host, authenticated with the ECR token (for manifests and configs). */
  private async distributionApi(): Promise<OciRegistry> {
    const auth = await this.engineAuth();
    this.distribution ??= new OciRegistry(
      { kind: 'oci', host: this.host, prefix: '', url: `oci://${this.host}` },
      {
        redactor: this.redactor,
        ...(auth.username !== undefined && auth.password !== undefined
          ? { username: auth.username, password: auth.password }
          : {}),
      },
    );
    return this.distribution;
  }

  /** Runs one ECR call, translating SDK errors into SlipwayErrors with hints. */
  private async call<T>(what: string, resource: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
      const name = nameOf(err);
      const message = this.redactor.redact(messageOf(err));
      const full = `${this.url}/${resource}`;
      if (name === 'RepositoryNotFoundException') {
        throw new SlipwayError(
          'REPOSITORY_NOT_FOUND',
          `No ECR repository named ${resource.split(/[:@]/)[0]} in account ${this.account} (${this.region})`,
          {
            resource: full,
            hint: 'run with --create-repos to create it, or check the repository name and the account',
            cause: err,
          },
        );
      }
      if (name === 'ImageTagAlreadyExistsException') {
        throw new SlipwayError('PUSH_FAILED', `${what}: ${message}`, {
          resource: full,
          hint: 'the repository has immutable tags; moving tags need tagMutability MUTABLE',
          cause: err,
        });
      }
      if (isUnreachable(err) || isTimeout(err)) {
        throw new SlipwayError('REGISTRY_UNREACHABLE', `${what}: the ECR API is unreachable (${message})`, {
          resource: full,
          hint: 'check the network, AWS_REGION and AWS_ENDPOINT_URL_ECR',
          cause: err,
        });
      }
      if (name && CREDENTIAL_ERRORS.has(name)) {
        throw new SlipwayError(
          'REGISTRY_ERROR',
          `${what}: AWS refused the credentials (${name}: ${message})`,
          {
            resource: full,
            hint: 'check AWS_PROFILE / AWS_ACCESS_KEY_ID and that the role may use ECR in this account',
            cause: err,
          },
        );
      }
      throw new SlipwayError('REGISTRY_ERROR', `${what}: ${name ? `${name}: ` : ''}${message}`, {
        resource: full,
        cause: err,
      });
    }
  }
}

function nameOf(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
}
