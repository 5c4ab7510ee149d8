import { SlipwayError } from './errors.js';

/**
 * An image reference `[registry/]repository[:tag][@digest]`, parsed once and immutable.
 * Follows the grammar of distribution's `reference` package: a first path component is a
 * registry when it contains `.` or `:` or is `localhost`.
 */
export class ImageRef {
  /** Registry host[:port], or undefined for a bare local name. */
  readonly registry: string | undefined;
  /** Repository path, e.g. `molecule-ai/platform`. */
  readonly repository: string;
  readonly tag: string | undefined;
  /** `sha256:<64 hex>` when pinned. */
  readonly digest: string | undefined;

  private constructor(registry: string | undefined, repository: string, tag?: string, digest?: string) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /** Parses a reference; throws a USAGE error naming the exact problem. */
  static parse(input: string, what = 'image reference'): ImageRef {
    const fail = (problem: string): never => {
      throw new SlipwayError('USAGE', `invalid ${what} "${input}": ${problem}`, {
        resource: input,
        hint: 'use registry/repository:tag or registry/repository@sha256:<64 hex>',
      });
    };
    if (input.length === 0 || input.length > 512) fail('empty or too long');
    let rest = input;
    let digest: string | undefined;
    const at = rest.indexOf('@');
    if (at >= 0) {
      digest = rest.slice(at + 1);
      rest = rest.slice(0, at);
      if (!DIGEST_RE.test(digest)) fail(`digest "${digest}" is not sha256:<64 lowercase hex>`);
    }
    let tag: string | undefined;
    const lastSlash = rest.lastIndexOf('/');
    const colon = rest.lastIndexOf(':');
    if (colon > lastSlash) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!TAG_RE.test(tag)) fail(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    }
    let registry: string | undefined;
    const firstSlash = rest.indexOf('/');
    if (firstSlash > 0) {
      const first = rest.slice(0, firstSlash);
      if (first.includes('.') || first.includes(':') || first === 'localhost') {
        registry = first;
        rest = rest.slice(firstSlash + 1);
        if (!REGISTRY_RE.test(registry)) fail(`registry "${registry}" is not a host[:port]`);
      }
    }
    if (!REPOSITORY_RE.test(rest)) {
      fail(`repository "${rest}" must be lowercase path components of [a-z0-9] separated by . _ - or /`);
    }
    return new ImageRef(registry, rest, tag, digest);
  }

  /** Builds a reference from parts (validated like {@link parse}). */
  static of(parts: { registry?: string; repository: string; tag?: string; digest?: string }): ImageRef {
    const head = parts.registry ? `${parts.registry}/${parts.repository}` : parts.repository;
    return ImageRef.parse(
      `${head}${parts.tag ? `:${parts.tag}` : ''}${parts.digest ? `@${parts.digest}` : ''}`,
    );
  }

  /** `registry/repository` without tag or digest. */
  get name(): string {
    return this.registry ? `${this.registry}/${this.repository}` : this.repository;
  }

  /** A copy with the given tag (and no digest). */
  withTag(tag: string): ImageRef {
    return ImageRef.of({ registry: this.registry, repository: this.repository, tag });
  }

  /** A copy pinned to the digest (the tag is dropped: a digest reference never moves). */
  withDigest(digest: string): ImageRef {
    return ImageRef.of({ registry: this.registry, repository: this.repository, digest });
  }

  /** True when the reference names a digest. */
  get pinned(): boolean {
    return this.digest !== undefined;
  }

  /** The canonical string form. */
  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** `sha256:` followed by 64 lowercase hex digits. */
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
/** A valid docker tag. */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REGISTRY_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
/** A valid repository path (no registry). */
export const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** True when `s` is a `sha256:` digest. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}
