import { z } from 'zod';
import { REPOSITORY_RE } from '../core/image-ref.js';

/**
 * The manifest format (`manifest.json`), version 1. Strict: an unknown key anywhere is an
 * error, so a typo (`"requierd"`) can never silently disable a check. The JSON Schema in
 * `schema/manifest.schema.json` is generated from this file (`npm run schema`).
 */

/** Names of templates, images and runtimes: they become directory names and label keys. */
export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME_RE, {
    message: `${what} names are lowercase letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)`,
  });

/** A path relative to the manifest's directory, never absolute and never escaping upwards. */
const relPath = (what: string) =>
  z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(p), {
      message: `${what} must be relative to the manifest's directory`,
    });

const globList = z.array(z.string().min(1));

/** A git repository: any URL git understands (`file://`, `http(s)://`, `ssh://`, `git://`) or a local path. */
const GitSource = z
  .strictObject({
    git: z.string().min(1).describe('git URL, or a path to a local repository relative to the manifest'),
    subdir: relPath('subdir').optional().describe('stage only this directory of the repository'),
  })
  .describe('a git repository, fetched at exactly `ref`');

/** A GitHub repository fetched as a tarball through the REST API. */
const GitHubSource = z
  .strictObject({
    github: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { message: 'github source must be owner/repo' }),
    apiUrl: z
      .url()
      .optional()
      .describe('API base URL for GitHub Enterprise (default https://api.github.com)'),
    subdir: relPath('subdir').optional(),
  })
  .describe('a GitHub repository, fetched as the tarball of commit `ref`');

/** A Gitea repository fetched as an archive through its API. */
const GiteaSource = z
  .strictObject({
    gitea: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { message: 'gitea source must be owner/repo' }),
    apiUrl: z.url().describe('the Gitea API base URL, e.g. https://gitea.example.com/api/v1'),
    subdir: relPath('subdir').optional(),
  })
  .describe('a Gitea repository, fetched as the archive of commit `ref`');

/** A local directory, for developers iterating on a template; never pinned. */
const PathSource = z
  .strictObject({
    path: z.string().min(1).describe('a directory, relative to the manifest'),
  })
  .describe('a local directory (development only: not pinned, refused by `verify --strict`)');

/** Where a template's files come from. */
export const TemplateSourceSchema = z.union([GitSource, GitHubSource, GiteaSource, PathSource]);

/** A pinned template repository, staged into `<stagingDir>/<name>/`. */
export const TemplateSchema = z
  .strictObject({
    description: z.string().optional(),
    source: TemplateSourceSchema,
    ref: z
      .string()
      .optional()
      .describe('the full 40-hex commit to stage (required for git, github and gitea sources)'),
    include: globList.optional().describe('globs of files to stage (default: everything)'),
    exclude: globList.optional().describe('globs of files never to stage'),
    required: z
      .array(relPath('a required file'))
      .default([])
      .describe('files that must exist in the staged tree, e.g. config.yaml'),
    allowSensitive: globList
      .optional()
      .describe('credential-looking files that may be staged anyway (e.g. a public test key)'),
  })
  .describe('a template repository pinned at a commit');

const PathAssertion = z.strictObject({
  kind: z.literal('path'),
  name: z.string().optional(),
  path: z.string().startsWith('/'),
  type: z.enum(['file', 'directory', 'non-empty-directory', 'any']).default('any'),
  minSize: z.number().int().nonnegative().optional().describe('minimum size in bytes (files)'),
  mode: z
    .string()
    .regex(/^0?[0-7]{3,4}$/, { message: 'mode is octal, e.g. "0755"' })
    .optional()
    .describe('exact permission bits, octal'),
});

const TemplateMatchAssertion = z.strictObject({
  kind: z.literal('template'),
  name: z.string().optional(),
  path: z.string().startsWith('/').describe('a directory in the running container'),
  template: name('template').describe('the template whose staged content digest it must equal'),
  ignore: globList.optional().describe('files in the container to leave out of the comparison'),
});

const AbsentAssertion = z.strictObject({
  kind: z.literal('absent'),
  name: z.string().optional(),
  under: z.string().startsWith('/').describe('a directory searched recursively'),
  patterns: globList.min(1).describe('basenames or paths that must not exist, e.g. .git, .env*, *.pem'),
});

const ExecAssertion = z.strictObject({
  kind: z.literal('exec'),
  name: z.string().optional(),
  command: z.array(z.string()).min(1),
  user: z.string().optional(),
  exitCode: z.number().int().default(0),
  stdout: z.string().optional().describe('a regular expression the output must match'),
});

/** One check made against the running container. */
export const AssertionSchema = z.discriminatedUnion('kind', [
  PathAssertion,
  TemplateMatchAssertion,
  AbsentAssertion,
  ExecAssertion,
]);

/** When the booted container counts as ready for assertions. */
export const ReadinessSchema = z.union([
  z.strictObject({
    log: z.string().min(1).describe('a regular expression matched against container output'),
  }),
  z.strictObject({ file: z.string().startsWith('/').describe('a path that must appear in the container') }),
  z.strictObject({
    exec: z.array(z.string()).min(1).describe('a command that must exit 0 in the container'),
  }),
]);

/** How to boot an image and what to assert about it (post-push smoke). */
export const SmokeSpecSchema = z
  .strictObject({
    boot: z
      .strictObject({
        command: z.array(z.string()).optional().describe("replaces the image's CMD"),
        entrypoint: z
          .array(z.string())
          .optional()
          .describe("replaces the image's ENTRYPOINT (default: its own)"),
        env: z.record(z.string(), z.string()).default({}),
        user: z.string().optional(),
        emptyVolumes: z
          .array(z.string().startsWith('/'))
          .default([])
          .describe('paths mounted as fresh empty volumes, as provisioning does (e.g. /configs)'),
      })
      .default({ env: {}, emptyVolumes: [] }),
    ready: ReadinessSchema,
    timeoutSeconds: z.number().int().positive().max(3600).default(60),
    assertions: z.array(AssertionSchema).describe('every check; an empty list fails the smoke run'),
  })
  .describe('post-push smoke: boot the pushed image and prove its identity');

/** An image built from a Dockerfile and pushed under the manifest's tags. */
export const ImageSchema = z
  .strictObject({
    description: z.string().optional(),
    dockerfile: relPath('dockerfile'),
    context: relPath('context').default('.'),
    repository: z.string().regex(REPOSITORY_RE, {
      message: 'repository is a lowercase path such as molecule-ai/platform (no registry, no tag)',
    }),
    base: name('image').optional().describe('the image this one is built FROM, passed as BASE_IMAGE'),
    templates: z.array(name('template')).default([]).describe('templates this image consumes'),
    buildArgs: z.record(z.string(), z.string()).default({}),
    target: z.string().optional().describe('multi-stage build target'),
    labels: z.record(z.string(), z.string()).default({}),
    smoke: SmokeSpecSchema.optional(),
  })
  .describe('an image built and pushed by every run');

/** A placeholder in a tag template. */
export const TAG_PLACEHOLDERS = ['env', 'sha'] as const;
const tagTemplate = z
  .string()
  .min(1)
  .refine(
    (t) =>
      [...t.matchAll(/\{([^}]*)\}/g)].every((m) =>
        (TAG_PLACEHOLDERS as readonly string[]).includes(m[1] ?? ''),
      ),
    {
      message: `tag templates may only use the placeholders ${TAG_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`,
    },
  )
  .refine((t) => /^[A-Za-z0-9_{][A-Za-z0-9_.{}-]*$/.test(t), {
    message: 'tag templates use letters, digits, _, . and - (plus placeholders)',
  });

/** How pushed tags are named. */
export const TagsSchema = z
  .strictObject({
    immutable: z
      .array(
        tagTemplate.refine((t) => t.includes('{sha}'), {
          message: 'an immutable tag template must contain {sha}',
        }),
      )
      .min(1)
      .default(['{env}-{sha}'])
      .describe('pushed and verified first; never moved'),
    moving: z
      .array(tagTemplate)
      .default(['{env}-latest'])
      .describe('moved only after every immutable tag succeeded'),
    sha: z.enum(['full', 'short']).default('full'),
    shortLength: z.number().int().min(7).max(40).default(12),
  })
  .describe('tag templates');

/** A runtime's pin: which image the control plane boots for it. */
export const PinSchema = z.strictObject({
  description: z.string().optional(),
  image: name('image').describe('the manifest image this runtime boots'),
});

/** Registry settings used by `push`. */
export const PublishSchema = z.strictObject({
  registry: z
    .string()
    .regex(/^(ecr|oci):\/\/.+/, {
      message: 'registry is ecr://<account>.dkr.ecr.<region>.amazonaws.com or oci://host[:port][/prefix]',
    })
    .optional()
    .describe('default for --registry'),
  ecr: z
    .strictObject({
      scanOnPush: z.boolean().default(true),
      tagMutability: z.enum(['MUTABLE', 'IMMUTABLE']).default('MUTABLE'),
    })
    .default({ scanOnPush: true, tagMutability: 'MUTABLE' })
    .describe('settings for repositories created with --create-repos'),
  attestations: z
    .strictObject({
      publicKey: relPath('publish.attestations.publicKey')
        .optional()
        .describe(
          'PEM public key (ECDSA P-256, e.g. cosign.pub), relative to the manifest: a registry smoke attestation must verify with it to let `pins promote` through',
        ),
    })
    .optional()
    .describe('key policy for signed attestations kept in the registry'),
});

/** The whole manifest. */
export const ManifestSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1),
    description: z.string().optional(),
    _pinning_contract: z.string().optional().describe('free text; Slipway enforces the contract itself'),
    stagingDir: relPath('stagingDir')
      .default('.tenant-bundle-deps/workspace-configs-templates')
      .describe('where templates are staged, relative to the manifest'),
    templates: z.record(name('template'), TemplateSchema).default({}),
    images: z.record(name('image'), ImageSchema),
    tags: TagsSchema.default({
      immutable: ['{env}-{sha}'],
      moving: ['{env}-latest'],
      sha: 'full',
      shortLength: 12,
    }),
    pins: z.record(name('runtime'), PinSchema).default({}),
    publish: PublishSchema.default({ ecr: { scanOnPush: true, tagMutability: 'MUTABLE' } }),
  })
  .describe('Slipway manifest: pinned templates, the images built from them, and the runtimes they serve');

/** A parsed, defaulted manifest. */
export type Manifest = z.output<typeof ManifestSchema>;
/** The manifest as written in JSON (defaults not applied). */
export type ManifestInput = z.input<typeof ManifestSchema>;
export type Template = z.output<typeof TemplateSchema>;
export type TemplateSource = z.output<typeof TemplateSourceSchema>;
export type Image = z.output<typeof ImageSchema>;
export type SmokeSpec = z.output<typeof SmokeSpecSchema>;
export type Assertion = z.output<typeof AssertionSchema>;
export type Readiness = z.output<typeof ReadinessSchema>;
export type Tags = z.output<typeof TagsSchema>;
export type Pin = z.output<typeof PinSchema>;

/** The kind of a template source. */
export type SourceKind = 'git' | 'github' | 'gitea' | 'path';

/** Which kind of source a template uses. */
export function sourceKind(source: TemplateSource): SourceKind {
  if ('git' in source) return 'git';
  if ('github' in source) return 'github';
  if ('gitea' in source) return 'gitea';
  return 'path';
}
