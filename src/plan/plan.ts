import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { TAG_RE } from '../core/image-ref.js';
import { LABELS, templateDigestLabel, templateRefLabel } from '../core/labels.js';
import { sha256Hex } from '../core/tree-digest.js';
import { imageOrder } from '../manifest/graph.js';
import type { LoadedManifest } from '../manifest/load.js';
import { type Manifest, SmokeSpecSchema, type Tags } from '../manifest/schema.js';
import { contextDigest, readBuildContext } from '../preflight/context.js';
import type { StagingReceipt } from '../stage/receipt.js';
import type { Plan, PlannedImage, PlannedPinMove, PlannedTemplate } from './types.js';

/** What a plan is made from, besides the manifest. */
export interface PlanInputs {
  /** Environment name, rendered into tags (`staging`, `dev`). */
  readonly env: string;
  /** The source revision being built: a full 40-hex commit. */
  readonly sha: string;
  /** The staging receipt (what was staged, at which ref and digest). */
  readonly receipt: StagingReceipt;
  /** Build-arg overrides for every image (over each image's manifest `buildArgs`). */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Plan only these images (and their bases); default every image. */
  readonly images?: readonly string[];
  /** Where the source lives, for `org.opencontainers.image.source`. */
  readonly source?: string | null;
}

/** {@link PlanInputs} plus the impure facts {@link makePlan} gathers. */
export interface PurePlanInputs extends PlanInputs {
  /** Context digest (see preflight/context.ts) by image name. */
  readonly contextDigests: Readonly<Record<string, string>>;
  /** `sha256:` of each image's Dockerfile bytes by image name, when it could be read. */
  readonly dockerfileDigests?: Readonly<Record<string, string>>;
}

const sortedRecord = (r: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** `sha256:` over an image's build args and target: what the `dev.slipway.args-digest` label holds. */
export function argsDigest(buildArgs: Readonly<Record<string, string>>, target: string | null): string {
  return `sha256:${sha256Hex(JSON.stringify({ v: 1, buildArgs: Object.entries(sortedRecord(buildArgs)), target }))}`;
}

/**
 * The labels recording an image's comparable build inputs (Dockerfile, context, args), so
 * `status` can tell what the current checkout would build differently without building it.
 */
export function inputLabels(inputs: {
  readonly dockerfileDigest: string | undefined;
  readonly contextDigest: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly target: string | null;
}): Record<string, string> {
  return {
    ...(inputs.dockerfileDigest ? { [LABELS.dockerfileDigest]: inputs.dockerfileDigest } : {}),
    [LABELS.contextDigest]: inputs.contextDigest,
    [LABELS.argsDigest]: argsDigest(inputs.buildArgs, inputs.target),
  };
}

/** An environment name: lowercase letters, digits and `-`. */
export const ENV_RE = /^[a-z0-9][a-z0-9-]*$/;
const SHA_RE = /^[0-9a-f]{40}$/;

/** Tags rendered from the manifest's tag templates. */
export interface RenderedTags {
  readonly immutable: readonly string[];
  readonly moving: readonly string[];
}

/** Renders `{env}` and `{sha}` (full or short per `tags.sha`) into the tag templates; USAGE errors on bad input. */
export function renderTags(tags: Tags, vars: { env: string; sha: string }): RenderedTags {
  if (!ENV_RE.test(vars.env)) {
    throw new SlipwayError('USAGE', `invalid env "${vars.env}": use lowercase letters, digits and '-'`, {
      resource: vars.env,
      hint: 'e.g. --env staging',
    });
  }
  if (!SHA_RE.test(vars.sha)) {
    throw new SlipwayError('USAGE', `invalid sha "${vars.sha}": expected a full 40-hex lowercase commit`, {
      resource: vars.sha,
      hint: 'pass the output of `git rev-parse HEAD`',
    });
  }
  const sha = tags.sha === 'short' ? vars.sha.slice(0, tags.shortLength) : vars.sha;
  const render = (t: string) => {
    const tag = t.replaceAll('{env}', vars.env).replaceAll('{sha}', sha);
    if (!TAG_RE.test(tag)) {
      throw new SlipwayError(
        'USAGE',
        `tag template "${t}" renders "${tag}", which is not a valid Docker tag`,
        {
          resource: t,
          hint: 'a tag is at most 128 characters of [A-Za-z0-9_.-], not starting with . or -; shorten the env or the template',
        },
      );
    }
    return tag;
  };
  const immutable = [...new Set(tags.immutable.map(render))];
  const moving = [...new Set(tags.moving.map(render))];
  const clash = moving.find((t) => immutable.includes(t));
  if (clash !== undefined) {
    throw new SlipwayError('USAGE', `tag "${clash}" is rendered as both an immutable and a moving tag`, {
      resource: 'tags',
      hint: 'moving tags must differ from immutable ones, or the immutable tag would move',
    });
  }
  return { immutable, moving };
}

/**
 * The plan: pure and deterministic (same manifest and inputs give identical JSON). Images come
 * in build order; each consumed template must be in the receipt at the manifest's ref.
 */
export function plan(manifest: Manifest, inputs: PurePlanInputs): Plan {
  const tags = renderTags(manifest.tags, { env: inputs.env, sha: inputs.sha });
  const order = imageOrder(manifest, inputs.images);
  const stale: ErrorDetail[] = [];
  const receiptDir = path.posix.normalize(inputs.receipt.stagingDir);
  if (receiptDir !== path.posix.normalize(manifest.stagingDir)) {
    stale.push({
      at: 'stagingDir',
      message: `the receipt is for staging dir ${inputs.receipt.stagingDir}, the manifest stages into ${manifest.stagingDir}`,
    });
  }
  const images: PlannedImage[] = [];
  for (const name of order) {
    const image = manifest.images[name];
    if (!image) continue; // imageOrder already refused unknown names
    const templates: PlannedTemplate[] = [];
    image.templates.forEach((t, i) => {
      const staged = inputs.receipt.templates[t];
      const wanted = manifest.templates[t]?.ref ?? null;
      if (!staged) {
        stale.push({ at: `images.${name}.templates[${i}]`, message: `template "${t}" has not been staged` });
      } else if (staged.ref !== wanted) {
        stale.push({
          at: `templates.${t}.ref`,
          message: `template "${t}" was staged at ${staged.ref ?? '(unpinned path)'}, the manifest pins ${wanted ?? '(unpinned path)'}`,
        });
      } else {
        templates.push({ name: t, ref: staged.ref, digest: staged.digest });
      }
    });
    const digest = inputs.contextDigests[name];
    if (digest === undefined) {
      throw new SlipwayError('PLAN_INVALID', `no context digest for image ${name}`, {
        resource: name,
        hint: 'use makePlan(), which computes the context digests',
      });
    }
    const buildArgs = sortedRecord({ ...image.buildArgs, ...(inputs.buildArgs ?? {}) });
    const labels: Record<string, string> = {
      ...image.labels,
      ...inputLabels({
        dockerfileDigest: inputs.dockerfileDigests?.[name],
        contextDigest: digest,
        buildArgs,
        target: image.target ?? null,
      }),
      [LABELS.revision]: inputs.sha,
      ...(inputs.source ? { [LABELS.source]: inputs.source } : {}),
      [LABELS.title]: name,
      [LABELS.image]: name,
      [LABELS.templates]: image.templates.join(','),
    };
    for (const t of templates) {
      // A local path source has no commit: only its content digest is recorded.
      if (t.ref !== null) labels[templateRefLabel(t.name)] = t.ref;
      labels[templateDigestLabel(t.name)] = t.digest;
    }
    images.push({
      name,
      repository: image.repository,
      dockerfile: image.dockerfile,
      context: image.context,
      contextDigest: digest,
      base: image.base ?? null,
      buildArgs,
      target: image.target ?? null,
      labels: sortedRecord(labels),
      templates,
      immutableTags: tags.immutable,
      movingTags: tags.moving,
      smoke: image.smoke ?? null,
    });
  }
  if (stale.length > 0) {
    throw new SlipwayError(
      'PLAN_INVALID',
      `the staged templates do not match the manifest:\n${stale.map((d) => `  ${d.at}: ${d.message}`).join('\n')}`,
      { resource: inputs.receipt.stagingDir, details: stale, hint: 'run `slipway stage` and plan again' },
    );
  }
  const planned = new Set(order);
  const pins: PlannedPinMove[] = Object.keys(manifest.pins)
    .sort()
    .flatMap((runtime) => {
      const pin = manifest.pins[runtime];
      if (!pin || !planned.has(pin.image)) return [];
      return [{ runtime, image: pin.image, tag: tags.immutable[0] as string }];
    });
  return {
    version: 1,
    env: inputs.env,
    sha: inputs.sha,
    source: inputs.source ?? null,
    images,
    pins,
  };
}

/** Computes the context digest of each planned image (one walk per distinct context) and plans. */
export async function makePlan(loaded: LoadedManifest, inputs: PlanInputs): Promise<Plan> {
  const { manifest } = loaded;
  // Validate env/sha before walking any directory.
  renderTags(manifest.tags, { env: inputs.env, sha: inputs.sha });
  const byContext = new Map<string, Promise<string>>();
  const contextDigests: Record<string, string> = {};
  const dockerfileDigests: Record<string, string> = {};
  for (const name of imageOrder(manifest, inputs.images)) {
    const image = manifest.images[name];
    if (!image) continue;
    // An unreadable Dockerfile is preflight's error to report; the plan just records no digest.
    const dockerfile = await readFile(path.resolve(loaded.dir, image.dockerfile)).catch(() => null);
    if (dockerfile) dockerfileDigests[name] = `sha256:${sha256Hex(dockerfile)}`;
    const dir = path.resolve(loaded.dir, image.context);
    let digest = byContext.get(dir);
    if (!digest) {
      digest = readBuildContext(dir).then(contextDigest);
      byContext.set(dir, digest);
    }
    contextDigests[name] = await digest;
  }
  return plan(manifest, { ...inputs, contextDigests, dockerfileDigests });
}

const PlannedImageSchema = z.object({
  name: z.string(),
  repository: z.string(),
  dockerfile: z.string(),
  context: z.string(),
  contextDigest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  base: z.string().nullable(),
  buildArgs: z.record(z.string(), z.string()),
  target: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  templates: z.array(z.object({ name: z.string(), ref: z.string().nullable(), digest: z.string() })),
  immutableTags: z.array(z.string().regex(TAG_RE)).min(1),
  movingTags: z.array(z.string().regex(TAG_RE)),
  smoke: SmokeSpecSchema.nullable(),
});

/** The plan document's schema (version 1), for plans read back from a file. */
export const PlanSchema = z.object({
  version: z.literal(1),
  env: z.string().regex(ENV_RE),
  sha: z.string().regex(SHA_RE),
  source: z.string().nullable(),
  images: z.array(PlannedImageSchema),
  pins: z.array(z.object({ runtime: z.string(), image: z.string(), tag: z.string() })),
});

/** Parses and validates a plan document (`slipway build --plan FILE`); `file` names it in errors. */
export function parsePlan(text: string, file: string): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SlipwayError('PLAN_INVALID', `${file}: not valid JSON (${(err as Error).message})`, {
      resource: file,
      hint: 'write the plan with `slipway plan --json > FILE`',
    });
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (version !== 1) {
    throw new SlipwayError(
      'PLAN_INVALID',
      `${file}: plan version ${JSON.stringify(version)} is not supported (expected 1)`,
      {
        resource: file,
        hint: 'make the plan again with this version of slipway',
      },
    );
  }
  const result = PlanSchema.safeParse(raw);
  if (!result.success) {
    const details = result.error.issues.map((i) => ({
      at: i.path.join('.') || '(root)',
      message: i.message,
    }));
    throw new SlipwayError(
      'PLAN_INVALID',
      `${file}: not a valid plan:\n${details.map((d) => `  ${d.at}: ${d.message}`).join('\n')}`,
      { resource: file, details, hint: 'write the plan with `slipway plan --json > FILE`' },
    );
  }
  const planDoc = result.data as Plan;
  const names = new Set(planDoc.images.map((i) => i.name));
  for (const [i, image] of planDoc.images.entries()) {
    if (image.base !== null && !planDoc.images.slice(0, i).some((b) => b.name === image.base)) {
      throw new SlipwayError(
        'PLAN_INVALID',
        `${file}: image ${image.name} comes before its base ${image.base}`,
        {
          resource: file,
          hint: names.has(image.base)
            ? 'bases must precede the images built on them'
            : `add ${image.base} to the plan`,
        },
      );
    }
  }
  return planDoc;
}

export { gitHead, gitSource } from './revision.js';
