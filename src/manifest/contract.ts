import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { findBaseCycle } from './graph.js';
import type { LoadedManifest } from './load.js';
import { type Manifest, sourceKind } from './schema.js';

/** A full, lowercase, 40-hex git commit id. */
export const FULL_SHA_RE = /^[0-9a-f]{40}$/;

/** Outcome of checking the pinning contract: errors refuse the manifest, warnings are reported. */
export interface ContractReport {
  readonly errors: ErrorDetail[];
  readonly warnings: ErrorDetail[];
}

/** Options for {@link checkContract}. */
export interface ContractOptions {
  /** Refuse unpinned `path` sources (CI and release builds). */
  readonly strict?: boolean;
}

function describeRef(ref: string): string {
  if (/^[0-9a-fA-F]{4,39}$/.test(ref)) return 'a short SHA, which is ambiguous and can collide';
  if (/^[0-9A-F]{40}$/i.test(ref)) return 'uppercase hex; write commit ids in lowercase';
  if (/^v?\d+(\.\d+)*/.test(ref) || ref.startsWith('refs/tags/'))
    return 'a tag, which can be moved or deleted';
  return 'a branch or other name, which moves';
}

/**
 * The pinning contract, beyond the schema: every git/archive ref is a full 40-hex commit; every
 * image's templates, base and smoke template references exist; the base graph has no cycle; no
 * two images push to one repository; every pin names an existing image.
 */
export function checkContract(manifest: Manifest, options: ContractOptions = {}): ContractReport {
  const errors: ErrorDetail[] = [];
  const warnings: ErrorDetail[] = [];
  const templateNames = Object.keys(manifest.templates).sort();
  const imageNames = Object.keys(manifest.images).sort();
  const known = (names: string[]) => (names.length > 0 ? names.join(', ') : '(none)');

  for (const [name, t] of Object.entries(manifest.templates)) {
    const kind = sourceKind(t.source);
    const at = `templates.${name}.ref`;
    if (kind === 'path') {
      if (t.ref !== undefined) {
        errors.push({
          at,
          message: `a "path" source is not pinned, so "ref" has no meaning`,
          hint: 'remove "ref", or use a git source',
        });
      }
      const problem = {
        at: `templates.${name}.source`,
        message: `template "${name}" is a local path, not pinned at a commit`,
        hint: 'use {"git": URL} with "ref": <40-hex commit> for builds that ship',
      };
      (options.strict ? errors : warnings).push(problem);
      continue;
    }
    if (t.ref === undefined) {
      errors.push({
        at,
        message: `template "${name}" has no "ref"`,
        hint: 'pin the full 40-hex commit, e.g. the output of `git rev-parse <branch>`',
      });
    } else if (!FULL_SHA_RE.test(t.ref)) {
      errors.push({
        at,
        message: `template "${name}" ref "${t.ref}" is not a full 40-hex commit: it is ${describeRef(t.ref)}`,
        hint: `pin the commit itself, e.g. \`git rev-parse ${t.ref}\` in the template repository`,
      });
    }
  }

  const repositories = new Map<string, string>();
  for (const [name, image] of Object.entries(manifest.images)) {
    image.templates.forEach((tname, i) => {
      if (!manifest.templates[tname]) {
        errors.push({
          at: `images.${name}.templates[${i}]`,
          message: `image "${name}" consumes template "${tname}", which the manifest does not define`,
          hint: `add "${tname}" under "templates" (known: ${known(templateNames)})`,
        });
      }
    });
    if (new Set(image.templates).size !== image.templates.length) {
      errors.push({
        at: `images.${name}.templates`,
        message: `image "${name}" lists a template twice`,
        hint: 'list each template once',
      });
    }
    if (image.base !== undefined) {
      if (image.base === name) {
        errors.push({
          at: `images.${name}.base`,
          message: `image "${name}" names itself as its base`,
          hint: 'base is the image this one is built FROM',
        });
      } else if (!manifest.images[image.base]) {
        errors.push({
          at: `images.${name}.base`,
          message: `image "${name}" has base "${image.base}", which the manifest does not define`,
          hint: `known images: ${known(imageNames)}`,
        });
      }
    }
    const other = repositories.get(image.repository);
    if (other !== undefined) {
      errors.push({
        at: `images.${name}.repository`,
        message: `images "${other}" and "${name}" both push to repository "${image.repository}"`,
        hint: 'give every image its own repository, or their tags overwrite each other',
      });
    } else {
      repositories.set(image.repository, name);
    }
    image.smoke?.assertions.forEach((a, i) => {
      if (a.kind === 'template' && !image.templates.includes(a.template)) {
        errors.push({
          at: `images.${name}.smoke.assertions[${i}].template`,
          message: `smoke compares with template "${a.template}", which image "${name}" does not consume`,
          hint: `add "${a.template}" to images.${name}.templates, or compare with one of: ${known(image.templates)}`,
        });
      }
    });
  }

  const cycle = findBaseCycle(manifest);
  if (cycle) {
    errors.push({
      at: `images.${cycle[0]}.base`,
      message: `images form a base cycle: ${cycle.join(' -> ')}`,
      hint: 'an image cannot be built FROM itself, directly or through other images',
    });
  }

  for (const [runtime, pin] of Object.entries(manifest.pins)) {
    if (!manifest.images[pin.image]) {
      errors.push({
        at: `pins.${runtime}.image`,
        message: `runtime "${runtime}" is pinned to image "${pin.image}", which the manifest does not define`,
        hint: `runtimes and images are distinct names; known images: ${known(imageNames)}`,
      });
    }
  }

  return { errors, warnings };
}

/** Throws a CONTRACT_VIOLATION listing every problem when the contract is broken. */
export function assertContract(loaded: LoadedManifest, options: ContractOptions = {}): ContractReport {
  const report = checkContract(loaded.manifest, options);
  if (report.errors.length > 0) throw contractViolation(loaded, report.errors);
  return report;
}

/** The CONTRACT_VIOLATION error listing every problem. */
export function contractViolation(loaded: LoadedManifest, errors: readonly ErrorDetail[]): SlipwayError {
  return new SlipwayError(
    'CONTRACT_VIOLATION',
    `${loaded.file}: the pinning contract is broken (${errors.length} problem${errors.length === 1 ? '' : 's'}):\n${formatContractDetails(errors)}`,
    {
      resource: loaded.file,
      details: [...errors],
      hint: 'fix the manifest; `slipway verify` re-checks it',
    },
  );
}

/** Contract problems as indented `at: message` lines, each hint on the line below. */
export function formatContractDetails(errors: readonly ErrorDetail[]): string {
  return errors.map((d) => `  ${d.at}: ${d.message}${d.hint ? `\n    hint: ${d.hint}` : ''}`).join('\n');
}
