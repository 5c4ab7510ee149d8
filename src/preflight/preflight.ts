import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import type { LoadedManifest } from '../manifest/load.js';
import type { Image, Manifest } from '../manifest/schema.js';
import { type BuildContext, readBuildContext } from './context.js';
import { analyzeDockerfile, referencesBaseImage } from './dockerfile.js';

/** Options for {@link preflight}. */
export interface PreflightOptions {
  /** Build-arg overrides, as the build will pass them (over the manifest's `buildArgs`). */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** Check only these images (default: every image in the manifest). */
  readonly images?: readonly string[];
  /**
   * The contract already found the base graph broken (a cycle, a missing or self base): skip the
   * checks that compare FROM with `base`, which would only report the same fault as a Dockerfile one.
   */
  readonly skipBaseChecks?: boolean;
  readonly sink?: EventSink;
}

/** What preflight checked for one image. */
export interface PreflightImage {
  readonly name: string;
  /** Dockerfile path relative to the manifest directory. */
  readonly dockerfile: string;
  /** COPY/ADD sources checked against the context. */
  readonly sources: number;
  /** Templates whose staged directory a COPY/ADD reads. */
  readonly consumes: readonly string[];
}

/** The outcome of a successful preflight. */
export interface PreflightReport {
  readonly images: readonly PreflightImage[];
  /** Suspicious but not fatal, e.g. a listed template no COPY reads. */
  readonly warnings: readonly ErrorDetail[];
}

/** Every preflight finding, fatal or not (see {@link checkPreflight}). */
export interface PreflightCheck extends PreflightReport {
  /** Problems that would break the build; empty when preflight passes. */
  readonly errors: readonly ErrorDetail[];
}

const toPosix = (p: string) => p.split(path.sep).join('/');
const GLOB_CHARS = /[*?[]/;

/** The build args preflight resolves against: manifest's, then overrides, then BASE_IMAGE from `base`. */
export function effectiveBuildArgs(
  image: Image,
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return { ...image.buildArgs, ...overrides };
}

/**
 * Checks every image's Dockerfile before anything is built: the Dockerfile exists; each COPY/ADD
 * source (after ARG substitution) is in the build context after `.dockerignore`, or lies in a
 * template's staging directory that the image lists in `templates`; `FROM ${BASE_IMAGE}` is used
 * exactly when the image has a `base`, with `ARG BASE_IMAGE` declared before it. Throws
 * PREFLIGHT_FAILED listing every problem as `file:line`.
 */
export async function preflight(
  loaded: LoadedManifest,
  options: PreflightOptions = {},
): Promise<PreflightReport> {
  const { images, warnings, errors } = await checkPreflight(loaded, options);
  if (errors.length > 0) throw preflightFailure(loaded, errors);
  return { images, warnings };
}

/** The checks of {@link preflight}, returning the problems instead of throwing them. */
export async function checkPreflight(
  loaded: LoadedManifest,
  options: PreflightOptions = {},
): Promise<PreflightCheck> {
  const sink = options.sink ?? silentSink;
  const { manifest } = loaded;
  const names =
    options.images && options.images.length > 0 ? options.images : Object.keys(manifest.images).sort();
  const errors: ErrorDetail[] = [];
  const warnings: ErrorDetail[] = [];
  const images: PreflightImage[] = [];
  const contexts = new Map<string, Promise<BuildContext>>();
  const skipBaseChecks = options.skipBaseChecks ?? false;

  for (const name of names) {
    const image = manifest.images[name];
    if (!image) {
      errors.push({ at: `images.${name}`, message: `no image named "${name}" in the manifest` });
      continue;
    }
    const result = await checkImage(loaded, name, image, options.buildArgs ?? {}, contexts, skipBaseChecks);
    errors.push(...result.errors);
    warnings.push(...result.warnings);
    if (result.image) images.push(result.image);
    if (result.errors.length === 0) {
      sink({
        kind: 'step-done',
        stage: 'preflight',
        subject: name,
        message: `${image.dockerfile}: ${result.image?.sources ?? 0} COPY/ADD source(s) accounted for`,
      });
    }
  }
  return { images, warnings, errors };
}

/** The PREFLIGHT_FAILED error listing every problem. */
export function preflightFailure(loaded: LoadedManifest, errors: readonly ErrorDetail[]): SlipwayError {
  return new SlipwayError(
    'PREFLIGHT_FAILED',
    `preflight found ${errors.length} problem${errors.length === 1 ? '' : 's'}:\n${formatPreflightDetails(errors)}`,
    {
      resource: loaded.file,
      details: [...errors],
      hint: 'fix the Dockerfile or the manifest; nothing was built',
    },
  );
}

/** Preflight problems as indented `at: message (hint: …)` lines. */
export function formatPreflightDetails(errors: readonly ErrorDetail[]): string {
  return errors.map((d) => `  ${d.at}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ''}`).join('\n');
}

interface ImageCheck {
  errors: ErrorDetail[];
  warnings: ErrorDetail[];
  image?: PreflightImage;
}

async function checkImage(
  loaded: LoadedManifest,
  name: string,
  image: Image,
  overrides: Readonly<Record<string, string>>,
  contexts: Map<string, Promise<BuildContext>>,
  skipBaseChecks: boolean,
): Promise<ImageCheck> {
  const { manifest } = loaded;
  const errors: ErrorDetail[] = [];
  const warnings: ErrorDetail[] = [];
  const dockerfileAbs = path.resolve(loaded.dir, image.dockerfile);
  const dfRel = toPosix(path.relative(loaded.dir, dockerfileAbs));
  let text: string;
  try {
    text = await readFile(dockerfileAbs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    errors.push({
      at: `images.${name}.dockerfile`,
      message: `Dockerfile ${image.dockerfile} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`,
      hint: 'fix the path (relative to the manifest directory) or add the Dockerfile',
    });
    return { errors, warnings };
  }
  const contextAbs = path.resolve(loaded.dir, image.context);
  let context: BuildContext;
  try {
    let pending = contexts.get(contextAbs);
    if (!pending) {
      pending = readBuildContext(contextAbs);
      contexts.set(contextAbs, pending);
    }
    context = await pending;
  } catch {
    errors.push({
      at: `images.${name}.context`,
      message: `build context ${image.context} is not a directory`,
      hint: 'fix the path (relative to the manifest directory)',
    });
    return { errors, warnings };
  }

  const at = (line: number) => `${dfRel}:${line}`;
  if (image.base !== undefined && Object.hasOwn(image.buildArgs, 'BASE_IMAGE')) {
    errors.push({
      at: `images.${name}.buildArgs.BASE_IMAGE`,
      message: 'BASE_IMAGE is set by Slipway to the base image built in the same run',
      hint: `remove it; images.${name}.base ("${image.base}") decides the base`,
    });
  }
  const buildArgs = effectiveBuildArgs(image, overrides);
  // A placeholder: the real value (the base's image ID) exists only at build time.
  if (image.base !== undefined) buildArgs.BASE_IMAGE = `<image ${image.base}>`;
  const info = analyzeDockerfile(text, buildArgs);
  for (const p of info.problems)
    errors.push({ at: at(p.line), message: p.message, ...(p.hint ? { hint: p.hint } : {}) });

  if (info.froms.length === 0) {
    errors.push({ at: dfRel, message: 'the Dockerfile has no FROM instruction' });
  }
  const baseArg = info.globalArgs.get('BASE_IMAGE');
  let usesBase = false;
  for (const from of info.froms) {
    if (referencesBaseImage(from.raw)) {
      usesBase = true;
      if (image.base === undefined) {
        errors.push({
          at: at(from.line),
          message: `FROM ${from.raw} uses BASE_IMAGE, but images.${name} has no "base"`,
          hint: `set images.${name}.base to the manifest image this one is built on`,
        });
      } else if (!baseArg || baseArg.line > from.line) {
        errors.push({
          at: at(from.line),
          message: `FROM ${from.raw} uses BASE_IMAGE, but no ARG BASE_IMAGE is declared before the first FROM`,
          hint: 'add `ARG BASE_IMAGE` at the top of the Dockerfile, before any FROM',
        });
      }
    } else if (from.image.trim() === '') {
      errors.push({
        at: at(from.line),
        message: `FROM ${from.raw} resolves to an empty image name`,
        hint: 'give the ARG a default or pass it in the manifest buildArgs',
      });
    }
  }
  if (image.base !== undefined && !usesBase && info.froms.length > 0 && !skipBaseChecks) {
    errors.push({
      at: at(info.froms[0]?.line ?? 1),
      message: `images.${name} has base "${image.base}", but no FROM uses \${BASE_IMAGE}: the base would be ignored`,
      hint: `declare \`ARG BASE_IMAGE\` before the first FROM and write \`FROM \${BASE_IMAGE}\``,
    });
  }
  if (image.target !== undefined && !info.froms.some((f) => f.stage === image.target?.toLowerCase())) {
    errors.push({
      at: `images.${name}.target`,
      message: `target "${image.target}" is not a stage of ${dfRel}`,
      hint: `stages: ${
        info.froms
          .map((f) => f.stage)
          .filter((s) => s !== null)
          .join(', ') || '(none named)'
      }`,
    });
  }

  const present = new Set<string>();
  for (const e of context.entries) {
    const parts = e.path.split('/');
    for (let i = 1; i <= parts.length; i++) present.add(parts.slice(0, i).join('/'));
  }
  const stagingRel = toPosix(path.relative(contextAbs, path.resolve(loaded.dir, manifest.stagingDir)));
  const stagingInContext = stagingRel !== '' && !stagingRel.startsWith('..') && !path.isAbsolute(stagingRel);
  const consumes = new Set<string>();

  for (const src of info.sources) {
    const p = path.posix.normalize(src.path.replace(/^\/+/, '')).replace(/\/+$/, '');
    const shown = src.raw === src.path ? src.path : `${src.raw} (= ${src.path})`;
    if (p === '.' || p === '') continue;
    if (p === '..' || p.startsWith('../')) {
      errors.push({
        at: at(src.line),
        message: `${src.instruction} source ${shown} is outside the build context ${image.context}`,
        hint: 'sources are relative to the build context; move the file into it',
      });
      continue;
    }
    if (stagingInContext && p.startsWith(`${stagingRel}/`)) {
      const template = p.slice(stagingRel.length + 1).split('/')[0] ?? '';
      if (!GLOB_CHARS.test(template)) {
        const problem = stagedSourceProblem(
          manifest,
          name,
          image,
          template,
          shown,
          src.instruction,
          present.has(p),
        );
        consumes.add(template);
        if (problem) errors.push({ at: at(src.line), ...problem });
        continue;
      }
    }
    const matches = GLOB_CHARS.test(p) ? picomatch(p, { dot: true }) : null;
    const found = matches ? [...present].some((entry) => matches(entry)) : present.has(p);
    if (found) continue;
    const onDisk = await access(path.join(contextAbs, p)).then(
      () => true,
      () => false,
    );
    errors.push(
      onDisk
        ? {
            at: at(src.line),
            message: `${src.instruction} source ${shown} is excluded from the build context by ${toPosix(path.relative(loaded.dir, path.join(contextAbs, '.dockerignore')))}`,
            hint: `remove the pattern that matches it, or add the exception "!${p}"`,
          }
        : {
            at: at(src.line),
            message: `${src.instruction} source ${shown} does not exist in the build context ${image.context}`,
            hint: 'sources are relative to the build context (not to the Dockerfile); fix the path or add the file',
          },
    );
  }
  for (const t of image.templates) {
    if (!consumes.has(t) && stagingInContext) {
      warnings.push({
        at: `images.${name}.templates`,
        message: `image ${name} lists template "${t}", but no COPY/ADD in ${dfRel} reads ${stagingRel}/${t}`,
        hint: 'copy the staged template into the image, or remove it from the list',
      });
    }
  }
  return {
    errors,
    warnings,
    image: { name, dockerfile: dfRel, sources: info.sources.length, consumes: [...consumes].sort() },
  };
}

/** Why a source under the staging directory is not produced by the manifest, or null when it is. */
function stagedSourceProblem(
  manifest: Manifest,
  imageName: string,
  image: Image,
  template: string,
  shown: string,
  instruction: string,
  leftover: boolean,
): { message: string; hint: string } | null {
  const defined = Object.hasOwn(manifest.templates, template);
  const listed = image.templates.includes(template);
  if (defined && listed) return null;
  if (defined) {
    return {
      message: `${instruction} source ${shown} is staged by templates.${template}, but images.${imageName}.templates does not list it`,
      hint: `add "${template}" to images.${imageName}.templates`,
    };
  }
  return {
    message: leftover
      ? `${instruction} source ${shown} is only a leftover of an earlier staging: no manifest template stages it`
      : `${instruction} source ${shown} is not in the build context and no manifest template stages it`,
    hint: `add templates.${template} and list it in images.${imageName}.templates`,
  };
}
