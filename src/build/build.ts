import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { ImageRef } from '../core/image-ref.js';
import { LABELS } from '../core/labels.js';
import { sha256Hex } from '../core/tree-digest.js';
import type { ImageEngine, ImageInfo } from '../engine/image-engine.js';
import type { LoadedManifest } from '../manifest/load.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { contextDigest, type ExtraEntry, packContext, readBuildContext } from '../preflight/context.js';
import { analyzeDockerfile, referencesBaseImage } from '../preflight/dockerfile.js';
import { type BuildRegistry, cacheSources, type ResolvedBase, resolveBase } from './resolve-base.js';

/** An image built (or found up to date) by {@link buildImages}. */
export interface BuiltImage {
  /** The manifest image name. */
  readonly name: string;
  /** The `sha256:` image ID. */
  readonly id: string;
  /** Digest over every build input (see {@link inputDigest}); also the image's `dev.slipway.input-digest` label. */
  readonly inputDigest: string;
  /** True when an image with the same input digest already existed and was reused. */
  readonly reused: boolean;
  /** `<repository>:slipway-<first 12 hex of inputDigest>`. */
  readonly localTag: string;
}

/** Options for {@link buildImages}. */
export interface BuildOptions {
  /** The image engine the images are built in. */
  readonly engine: ImageEngine;
  /** Build only these images and their bases (default: every image in the plan). */
  readonly only?: readonly string[];
  /** Rebuild even when an up-to-date image exists, without the engine's layer cache. */
  readonly noCache?: boolean;
  /** Use BuildKit (API version 2) instead of the classic builder. */
  readonly buildkit?: boolean;
  readonly sink?: EventSink;
  readonly signal?: AbortSignal;
  /** The clock for `org.opencontainers.image.created` (tests). */
  readonly now?: () => Date;
  /**
   * Where the bases of `only` come from. `build` (default): they are built in this run too.
   * `pushed`: a base not named in `only` is resolved by the digest pushed for this plan (its
   * immutable tag in `registry`), pulled by digest and verified: how one plan is built piecewise
   * across runners.
   */
  readonly bases?: 'build' | 'pushed';
  /**
   * The registry the plan publishes to: bases are resolved there (`bases: 'pushed'`), and unless
   * `noCache`, each build takes cached layers from the image's `{env}-latest` and its base there.
   */
  readonly registry?: BuildRegistry;
  /** Scrubs credentials from pull errors. */
  readonly redact?: (text: string) => string;
}

/** Everything that decides what an image contains; `created` is left out so equal inputs give equal digests. */
export interface BuildInputs {
  readonly dockerfile: string | Buffer;
  readonly contextDigest: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | null;
  /** The base's image ID, or null. */
  readonly baseId: string | null;
  readonly labels: Readonly<Record<string, string>>;
}

const sortedEntries = (r: Readonly<Record<string, string>>) =>
  Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** `sha256:` over the Dockerfile content, context digest, build args, target, base ID and labels (minus `created`). */
export function inputDigest(inputs: BuildInputs): string {
  const doc = {
    v: 1,
    dockerfile: sha256Hex(inputs.dockerfile),
    context: inputs.contextDigest,
    buildArgs: sortedEntries(inputs.buildArgs),
    target: inputs.target,
    base: inputs.baseId,
    labels: sortedEntries(inputs.labels).filter(([k]) => k !== LABELS.created),
  };
  return `sha256:${sha256Hex(JSON.stringify(doc))}`;
}

/** The local tag of a build: `<repository>:slipway-<first 12 hex of the input digest>`. */
export function localTagFor(repository: string, digest: string): string {
  return `${repository}:slipway-${digest.replace(/^sha256:/, '').slice(0, 12)}`;
}

/**
 * The plan's images to build: `only` and (unless `withBases` is false) their bases, in plan
 * order; every image of the plan when `only` is empty.
 */
export function selectImages(plan: Plan, only?: readonly string[], withBases = true): PlannedImage[] {
  if (!only || only.length === 0) return [...plan.images];
  const byName = new Map(plan.images.map((i) => [i.name, i]));
  const wanted = new Set<string>();
  const add = (name: string) => {
    const image = byName.get(name);
    if (!image) {
      throw new SlipwayError('USAGE', `image "${name}" is not in the plan`, {
        resource: name,
        hint: `planned images: ${plan.images.map((i) => i.name).join(', ') || '(none)'}`,
      });
    }
    wanted.add(name);
    if (withBases && image.base !== null) add(image.base);
  };
  for (const n of only) add(n);
  return plan.images.filter((i) => wanted.has(i.name));
}

/**
 * Builds the plan's images in order, each dependent image `FROM` the base built (or found up to
 * date) in this run, passed as BASE_IMAGE by image ID, or (`bases: 'pushed'`) the base pushed
 * for this plan, passed by `registry/repo@digest`. An image whose input digest matches an
 * existing local image is reused, unless `noCache`. Returns the built images by name.
 */
export async function buildImages(
  loaded: LoadedManifest,
  plan: Plan,
  options: BuildOptions,
): Promise<Record<string, BuiltImage>> {
  const { engine } = options;
  const sink = options.sink ?? silentSink;
  const now = options.now ?? (() => new Date());
  const built: Record<string, BuiltImage> = {};
  const byName = new Map(plan.images.map((i) => [i.name, i]));

  const pushedBases = options.bases === 'pushed' && (options.only?.length ?? 0) > 0;
  if (pushedBases && !options.registry) {
    throw new SlipwayError('USAGE', 'building bases from the registry needs a registry', {
      hint: 'pass --registry URL, or set publish.registry in the manifest',
    });
  }
  const selected = selectImages(plan, options.only, !pushedBases);
  const resolved = new Map<string, ResolvedBase>();
  for (const image of selected) {
    if (options.signal?.aborted) {
      throw new SlipwayError('INTERRUPTED', 'build interrupted', { resource: image.name });
    }
    try {
      const planned = image.base === null ? undefined : byName.get(image.base);
      let pulled: ResolvedBase | undefined;
      if (image.base !== null && planned && !built[image.base] && pushedBases && options.registry) {
        pulled =
          resolved.get(image.base) ??
          (await resolveBase(planned, {
            engine,
            registry: options.registry,
            sink,
            dependent: image.name,
            ...(options.redact ? { redact: options.redact } : {}),
          }));
        resolved.set(image.base, pulled);
      }
      built[image.name] = await buildOne(loaded, image, {
        engine,
        sink,
        now,
        noCache: options.noCache ?? false,
        buildkit: options.buildkit ?? false,
        base: image.base === null ? null : { built: built[image.base], planned, pulled },
        ...(options.registry ? { registry: options.registry } : {}),
        ...(options.redact ? { redact: options.redact } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      sink({
        kind: 'step-failed',
        stage: 'build',
        subject: image.name,
        message: err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err),
      });
      throw err;
    }
  }
  return built;
}

interface OneOptions {
  engine: ImageEngine;
  sink: EventSink;
  now: () => Date;
  noCache: boolean;
  buildkit: boolean;
  base: {
    built: BuiltImage | undefined;
    planned: PlannedImage | undefined;
    pulled: ResolvedBase | undefined;
  } | null;
  registry?: BuildRegistry;
  redact?: (text: string) => string;
  signal?: AbortSignal;
}

/** The base a build chains to: built in this run, or pulled by the digest pushed for the plan. */
interface ChainBase {
  readonly id: string;
  /** What BASE_IMAGE is set to. */
  readonly buildRef: (buildkit: boolean) => string;
  readonly info: ImageInfo;
  readonly planned: PlannedImage;
  /** The registry reference when it was resolved there (a cache source too). */
  readonly ref?: ImageRef;
}

async function buildOne(loaded: LoadedManifest, image: PlannedImage, o: OneOptions): Promise<BuiltImage> {
  const { engine, sink } = o;
  const dockerfileAbs = path.resolve(loaded.dir, image.dockerfile);
  let dockerfile: Buffer;
  try {
    dockerfile = await readFile(dockerfileAbs);
  } catch {
    throw new SlipwayError(
      'PREFLIGHT_FAILED',
      `Dockerfile ${image.dockerfile} of image ${image.name} cannot be read`,
      {
        resource: image.dockerfile,
        details: [{ at: `images.${image.name}.dockerfile`, message: 'missing or unreadable' }],
        hint: 'run `slipway verify`; fix the path in the manifest',
      },
    );
  }
  const contextAbs = path.resolve(loaded.dir, image.context);
  const context = await readBuildContext(contextAbs);
  const digest = await contextDigest(context);
  if (digest !== image.contextDigest) {
    throw new SlipwayError(
      'PLAN_INVALID',
      `the build context of ${image.name} (${image.context}) changed since the plan was made (${image.contextDigest} -> ${digest})`,
      { resource: image.context, hint: 'make the plan again (`slipway plan`), or restore the files' },
    );
  }

  let base: ChainBase | null = null;
  if (o.base?.pulled && o.base.planned) {
    const { pulled, planned } = o.base;
    base = {
      id: pulled.id,
      buildRef: () => pulled.ref.toString(),
      info: pulled.info,
      planned,
      ref: pulled.ref,
    };
  } else if (o.base !== null) {
    const { built, planned } = o.base;
    if (!built || !planned) {
      throw new SlipwayError(
        'PLAN_INVALID',
        `image ${image.name} needs its base ${image.base}, which this run did not build`,
        {
          resource: image.name,
          hint: 'bases must come before the images built on them in the plan',
        },
      );
    }
    const info = await engine.inspectImage(built.id);
    if (!info) {
      throw new SlipwayError(
        'BUILD_FAILED',
        `base image ${built.id} (${planned.name}) disappeared from the engine`,
        {
          resource: planned.name,
          hint: 'something removed it during the run; build again',
        },
      );
    }
    // BuildKit in dockerd resolves `FROM sha256:<id>` as a registry name, so it gets the base's
    // content-addressed local tag instead; the layer check after the build proves it was that image.
    base = { id: built.id, buildRef: (bk) => (bk ? built.localTag : built.id), info, planned };
  }

  const digestOfInputs = inputDigest({
    dockerfile,
    contextDigest: digest,
    buildArgs: image.buildArgs,
    target: image.target,
    // The image ID, equal to the config digest: the same whether the base was built here or pulled.
    baseId: base?.id ?? null,
    labels: image.labels,
  });
  const localTag = localTagFor(image.repository, digestOfInputs);

  if (!o.noCache) {
    const existing = await engine.inspectImage(localTag);
    if (existing && existing.labels[LABELS.inputDigest] === digestOfInputs) {
      sink({
        kind: 'step-done',
        stage: 'build',
        subject: image.name,
        message: `up to date: ${localTag} (${existing.id})`,
        skipped: true,
      });
      return { name: image.name, id: existing.id, inputDigest: digestOfInputs, reused: true, localTag };
    }
  }

  sink({ kind: 'step-start', stage: 'build', subject: image.name, message: `building ${image.dockerfile}` });

  const buildArgs: Record<string, string> = { ...image.buildArgs };
  if (base) buildArgs.BASE_IMAGE = base.buildRef(o.buildkit);
  await requireLocalFroms(engine, image, dockerfile.toString('utf8'), buildArgs);
  // BuildKit writes its cache metadata into the image config, so a later build on an empty
  // engine can take cached layers from the pushed image without pulling it.
  if (o.buildkit) buildArgs.BUILDKIT_INLINE_CACHE = '1';
  const cacheFrom =
    o.registry && !o.noCache
      ? await cacheSources(image, {
          engine,
          registry: o.registry,
          sink,
          buildkit: o.buildkit,
          ...(base?.ref ? { base: base.ref } : {}),
          ...(o.redact ? { redact: o.redact } : {}),
        })
      : [];

  const labels: Record<string, string> = {
    ...image.labels,
    [LABELS.created]: o.now().toISOString(),
    [LABELS.inputDigest]: digestOfInputs,
    ...(base
      ? {
          [LABELS.baseName]: `${base.planned.repository}:${base.planned.immutableTags[0] ?? base.id}`,
          [LABELS.baseDigest]: base.id,
        }
      : {}),
  };

  const extra: ExtraEntry[] = [];
  const relDockerfile = path.relative(contextAbs, dockerfileAbs).split(path.sep).join('/');
  // The engine reads the Dockerfile from the context tar: send it even when .dockerignore excludes
  // it or it lives outside the context, as the docker CLI does.
  const dockerfileInTar = relDockerfile.startsWith('../')
    ? `.slipway-dockerfile-${image.name}`
    : relDockerfile;
  extra.push({ path: dockerfileInTar, content: dockerfile });
  const ignoreFile = path.join(contextAbs, '.dockerignore');
  if (
    await access(ignoreFile).then(
      () => true,
      () => false,
    )
  ) {
    extra.push({ path: '.dockerignore', content: await readFile(ignoreFile) });
  }

  const id = await engine.build(
    {
      subject: image.name,
      context: packContext(context, extra),
      dockerfile: dockerfileInTar,
      tag: localTag,
      buildArgs,
      labels,
      target: image.target,
      noCache: o.noCache,
      buildkit: o.buildkit,
      cacheFrom,
    },
    (line) => sink({ kind: 'output', stage: 'build', subject: image.name, line }),
    o.signal,
  );

  if (base) {
    const info = await engine.inspectImage(id);
    const layers = info?.layers ?? [];
    if (!base.info.layers.every((l, i) => layers[i] === l)) {
      throw new SlipwayError(
        'BUILD_FAILED',
        `image ${image.name} (${id}) is not built on its base ${base.planned.name} (${base.id}): its layers do not start with the base's`,
        { resource: image.name, hint: `the Dockerfile must build its final stage FROM \${BASE_IMAGE}` },
      );
    }
  }
  sink({ kind: 'step-done', stage: 'build', subject: image.name, message: `built ${localTag} (${id})` });
  return { name: image.name, id, inputDigest: digestOfInputs, reused: false, localTag };
}

/** Refuses a build whose FROM image is not local: Slipway never pulls (a pull could fetch anything). */
async function requireLocalFroms(
  engine: ImageEngine,
  image: PlannedImage,
  text: string,
  buildArgs: Readonly<Record<string, string>>,
): Promise<void> {
  const info = analyzeDockerfile(text, buildArgs);
  const stages = new Set<string>();
  for (const from of info.froms) {
    const ref = from.image.trim();
    const isStage = stages.has(ref.toLowerCase());
    if (from.stage) stages.add(from.stage);
    if (isStage || ref === 'scratch' || referencesBaseImage(from.raw)) continue;
    if (!(await engine.inspectImage(ref))) {
      throw new SlipwayError(
        'BUILD_FAILED',
        `${image.dockerfile}:${from.line}: FROM ${ref} is not in the local engine, and slipway never pulls`,
        {
          resource: ref,
          hint: `load or pull ${ref} first, or point the build arg at a local image (e.g. --build-arg ROOT_IMAGE=<image>)`,
        },
      );
    }
  }
}
