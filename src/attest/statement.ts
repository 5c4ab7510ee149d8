import type { Redactor } from '../core/redact.js';
import type { SmokeReport } from '../smoke/report.js';
import { canonicalJson } from '../smoke/report.js';

/**
 * in-toto Statement v1 builders: the smoke verdict of a digest, and SLSA provenance v1 of a
 * pushed image. Both are plain JSON values; {@link signStatement} wraps them in a DSSE envelope.
 */

/** The in-toto Statement v1 type URI. */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** The predicate type of a Slipway smoke verdict. */
export const SMOKE_PREDICATE_TYPE = 'https://slipway.dev/attestations/smoke/v1';
/** The SLSA provenance v1 predicate type. */
export const SLSA_PROVENANCE_TYPE = 'https://slsa.dev/provenance/v1';
/** The build type Slipway records in provenance. */
export const SLIPWAY_BUILD_TYPE = 'https://slipway.dev/buildtypes/docker-build/v1';

/** An in-toto ResourceDescriptor (subject or resolved dependency). */
export interface ResourceDescriptor {
  readonly name?: string;
  readonly uri?: string;
  readonly digest: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, unknown>>;
}

/** An in-toto Statement v1. */
export interface Statement<P = unknown> {
  readonly _type: typeof STATEMENT_TYPE;
  readonly subject: readonly ResourceDescriptor[];
  readonly predicateType: string;
  readonly predicate: P;
}

/** Where a run happened: a description of the runner, never its environment or credentials. */
export interface RunnerDescription {
  /** The host name of the machine. */
  readonly host: string;
  /** `linux/x64`. */
  readonly platform: string;
  /** The CI system (`github-actions`, `gitea-actions`, `ci`), or null outside CI. */
  readonly ci: string | null;
  /** Slipway's version. */
  readonly slipway: string;
}

/** The subject descriptor of an image digest in a repository (`name` without tag or digest). */
export function imageSubject(repository: string, digest: string): ResourceDescriptor {
  const [algorithm, hex] = digest.split(':');
  return { name: repository, digest: { [algorithm ?? 'sha256']: hex ?? '' } };
}

/** A template the smoke run compared files against, as staged. */
export interface ComparedTemplate {
  readonly name: string;
  readonly ref: string | null;
  readonly digest: string;
}

/** The smoke verdict predicate. */
export interface SmokePredicate {
  readonly image: string;
  readonly reference: string;
  readonly specDigest: string;
  readonly passed: boolean;
  readonly summary: string;
  readonly failure: { readonly code: string; readonly message: string } | null;
  readonly assertions: ReadonlyArray<{
    readonly name: string;
    readonly kind: string;
    readonly passed: boolean;
    readonly expected?: unknown;
    readonly observed: unknown;
    readonly message: string;
  }>;
  readonly templates: readonly ComparedTemplate[];
  readonly startedOn: string;
  readonly finishedOn: string;
  readonly by: string;
  readonly runner: RunnerDescription;
}

/** Inputs of {@link smokeStatement}. */
export interface SmokeStatementInput {
  readonly report: SmokeReport;
  /** Repository name with registry, e.g. `127.0.0.1:5000/molecule-ai/platform`. */
  readonly repository: string;
  readonly digest: string;
  readonly summary: string;
  readonly templates: readonly ComparedTemplate[];
  readonly by: string;
  readonly runner: RunnerDescription;
  /** Scrubs credentials from what the container printed (observed values). */
  readonly redactor: Redactor;
}

/** The smoke verdict of one digest as an in-toto statement: spec digest, every assertion, templates, when and where. */
export function smokeStatement(input: SmokeStatementInput): Statement<SmokePredicate> {
  const { report } = input;
  const started = new Date(report.startedAt);
  const predicate: SmokePredicate = {
    image: report.imageName,
    reference: `${input.repository}@${input.digest}`,
    specDigest: report.specDigest,
    passed: report.passed && !report.skipped,
    summary: input.summary,
    failure: report.failure ? { code: report.failure.code, message: report.failure.message } : null,
    assertions: report.assertions.map((a) => ({
      name: a.name,
      kind: a.kind,
      passed: a.passed,
      ...(a.expected === undefined ? {} : { expected: a.expected }),
      observed: a.observed ?? null,
      message: a.message,
    })),
    templates: input.templates.map((t) => ({ name: t.name, ref: t.ref, digest: t.digest })),
    startedOn: started.toISOString(),
    finishedOn: new Date(started.getTime() + report.durationMs).toISOString(),
    by: input.by,
    runner: input.runner,
  };
  return {
    _type: STATEMENT_TYPE,
    subject: [imageSubject(input.repository, input.digest)],
    predicateType: SMOKE_PREDICATE_TYPE,
    predicate: scrub(predicate, input.redactor),
  };
}

/** A dependency of a build: a template pin, the base image, the Dockerfile, the source. */
export interface ProvenanceInput {
  readonly repository: string;
  readonly digest: string;
  /** The manifest image name. */
  readonly image: string;
  readonly builder: { readonly id: string; readonly version: string };
  readonly source: { readonly repository: string | null; readonly revision: string };
  readonly dockerfile: { readonly path: string; readonly digest: string | null };
  readonly context: { readonly path: string; readonly digest: string };
  readonly target: string | null;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly templates: ReadonlyArray<{
    readonly name: string;
    readonly source: string | null;
    readonly ref: string | null;
    readonly digest: string;
  }>;
  /** The image built FROM: its reference and registry digest (or image ID), when known. */
  readonly base: { readonly name: string; readonly digest: string } | null;
  readonly env: string;
  readonly tags: readonly string[];
  readonly invocationId: string;
  readonly startedOn: string;
  readonly finishedOn: string;
  readonly runner: RunnerDescription;
  readonly redactor: Redactor;
}

const SECRET_NAME = /(pass(word)?|secret|token|credential|private|api[_-]?key|auth)/i;

/** Build args as provenance records them: values kept, except those that look secret. */
export function redactBuildArgs(
  args: Readonly<Record<string, string>>,
  redactor: Redactor,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(args)) out[k] = SECRET_NAME.test(k) ? '***' : redactor.redact(v);
  return out;
}

const digestMap = (digest: string): Record<string, string> => {
  const i = digest.indexOf(':');
  return i < 0 ? { sha256: digest } : { [digest.slice(0, i)]: digest.slice(i + 1) };
};

/** SLSA provenance v1 for a pushed image. */
export function provenanceStatement(input: ProvenanceInput): Statement {
  const deps: ResourceDescriptor[] = [];
  if (input.source.repository !== null || input.source.revision) {
    deps.push({
      name: 'source',
      ...(input.source.repository ? { uri: `git+${input.source.repository}` } : {}),
      digest: { gitCommit: input.source.revision },
    });
  }
  for (const t of input.templates) {
    deps.push({
      name: `template:${t.name}`,
      ...(t.source ? { uri: t.source } : {}),
      digest: { ...digestMap(t.digest), ...(t.ref ? { gitCommit: t.ref } : {}) },
    });
  }
  if (input.base)
    deps.push({ name: 'base-image', uri: input.base.name, digest: digestMap(input.base.digest) });
  if (input.dockerfile.digest)
    deps.push({ name: 'dockerfile', uri: input.dockerfile.path, digest: digestMap(input.dockerfile.digest) });
  deps.push({ name: 'context', uri: input.context.path, digest: digestMap(input.context.digest) });
  const predicate = {
    buildDefinition: {
      buildType: SLIPWAY_BUILD_TYPE,
      externalParameters: {
        image: input.image,
        repository: input.repository,
        dockerfile: input.dockerfile.path,
        context: input.context.path,
        target: input.target,
        buildArgs: redactBuildArgs(input.buildArgs, input.redactor),
        env: input.env,
        tags: input.tags,
        source: input.source,
      },
      internalParameters: { runner: input.runner },
      resolvedDependencies: deps,
    },
    runDetails: {
      builder: { id: input.builder.id, version: { slipway: input.builder.version } },
      metadata: {
        invocationId: input.invocationId,
        startedOn: input.startedOn,
        finishedOn: input.finishedOn,
      },
    },
  };
  return {
    _type: STATEMENT_TYPE,
    subject: [imageSubject(input.repository, input.digest)],
    predicateType: SLSA_PROVENANCE_TYPE,
    predicate: scrub(predicate, input.redactor),
  };
}

/** Passes a JSON value through the redactor, so no credential the process holds can be in it. */
function scrub<T>(value: T, redactor: Redactor): T {
  return JSON.parse(redactor.redact(canonicalJson(value))) as T;
}
