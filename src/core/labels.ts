/** Image label keys Slipway writes at build and reads at smoke, status and promotion. */
export const LABELS = {
  /** OCI: the source revision (40-hex commit) the image was built from. */
  revision: 'org.opencontainers.image.revision',
  source: 'org.opencontainers.image.source',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  /** The manifest image name (e.g. `platform-agent`). */
  image: 'dev.slipway.image',
  /** Digest over every build input (Dockerfile, context digest, args, base id): the up-to-date key. */
  inputDigest: 'dev.slipway.input-digest',
  /** Comma-separated names of the templates the image consumes. */
  templates: 'dev.slipway.templates',
  /** `sha256:` of the Dockerfile's bytes: lets `status` tell a Dockerfile change without building. */
  dockerfileDigest: 'dev.slipway.dockerfile-digest',
  /** The build context's tree digest (after `.dockerignore`), for `status`. */
  contextDigest: 'dev.slipway.context-digest',
  /** `sha256:` over the build args and target (values never appear in a label), for `status`. */
  argsDigest: 'dev.slipway.args-digest',
} as const;

/** Label holding a consumed template's pinned commit. */
export function templateRefLabel(template: string): string {
  return `dev.slipway.template.${template}.ref`;
}

/** Label holding a consumed template's staged content digest (see core/tree-digest.ts). */
export function templateDigestLabel(template: string): string {
  return `dev.slipway.template.${template}.digest`;
}
