import { appendFileSync } from 'node:fs';
import { EOL } from 'node:os';
import type { ErrorCode, SlipwayError } from '../../core/errors.js';
import type { SlipwayEvent, Stage } from '../../core/events.js';
import type { Redactor } from '../../core/redact.js';
import type { SmokeReport } from '../../smoke/report.js';
import { formatCommand, formatOutput } from './format.js';
import { locateDetail } from './locate.js';
import type { renderSummary } from './summary.js';

/** True when the CLI runs as a GitHub or Gitea Actions step (Gitea sets both variables). */
export function inActions(env: NodeJS.ProcessEnv): boolean {
  return env.GITHUB_ACTIONS === 'true' || env.GITEA_ACTIONS === 'true';
}

const STAGE_OF: Partial<Record<ErrorCode, Stage>> = {
  MANIFEST_NOT_FOUND: 'verify',
  MANIFEST_PARSE: 'verify',
  MANIFEST_INVALID: 'verify',
  CONTRACT_VIOLATION: 'verify',
  PREFLIGHT_FAILED: 'preflight',
  PLAN_INVALID: 'plan',
  SOURCE_FETCH_FAILED: 'stage',
  COMMIT_NOT_FOUND: 'stage',
  STAGING_REFUSED: 'stage',
  REQUIRED_FILE_MISSING: 'stage',
  GIT_HOST_UNREACHABLE: 'stage',
  BUILD_FAILED: 'build',
  ENGINE_UNREACHABLE: 'build',
  PUSH_FAILED: 'push',
  REGISTRY_ERROR: 'push',
  REPOSITORY_NOT_FOUND: 'push',
  DIGEST_MISMATCH: 'push',
  IMMUTABLE_TAG_CONFLICT: 'push',
  REGISTRY_UNREACHABLE: 'push',
  SMOKE_FAILED: 'smoke',
  SMOKE_SPEC_INVALID: 'smoke',
  GATE_REFUSED: 'pins',
  PIN_CONFLICT: 'pins',
  PIN_NOT_FOUND: 'pins',
  STORE_ERROR: 'pins',
  DATABASE_UNREACHABLE: 'pins',
};

/** Errors located in the manifest or a Dockerfile: annotated at the line. */
const LOCATED: ReadonlySet<ErrorCode> = new Set([
  'MANIFEST_PARSE',
  'MANIFEST_INVALID',
  'CONTRACT_VIOLATION',
  'PREFLIGHT_FAILED',
  'PLAN_INVALID',
]);

/** What a failure at each stage leaves as it was; Slipway moves tags and pins last, all or nothing. */
function untouched(stage: Stage | undefined): string {
  switch (stage) {
    case 'verify':
    case 'source':
    case 'stage':
    case 'preflight':
    case 'plan':
    case 'build':
      return 'nothing was pushed; no tag and no pin moved';
    case 'push':
      return 'no moving tag and no pin moved (immutable tags pushed before the failure stay)';
    case 'smoke':
      return 'no moving tag and no pin moved; the pushed immutable tags stay for inspection';
    case 'pins':
      return 'pins that were not moved keep their previous digest (compare-and-set)';
    default:
      return 'see the log';
  }
}

/**
 * Actions-native output for one CLI run: a collapsible log group per stage and annotations on
 * stderr (stdout stays the command's result, so `--json` is still one document), step outputs in
 * `$GITHUB_OUTPUT` and a Markdown job summary in `$GITHUB_STEP_SUMMARY`, both named by the CLI's
 * injected environment. With `--log-format ndjson` stderr carries only NDJSON: no groups or annotations.
 */
export class ActionsReporter {
  private openGroup: Stage | undefined;
  private lastStage: Stage | undefined;
  private failedStage: Stage | undefined;
  private result: unknown;
  private readonly smoke: SmokeReport[] = [];
  private readonly sections: string[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly stderr: (text: string) => void,
    private readonly redactor: Redactor,
    private readonly workspace: string,
    private readonly commandsOnStderr: () => boolean,
  ) {}

  /** Called before an event is rendered: opens the stage's log group when the stage changes. */
  event(event: SlipwayEvent): void {
    if (event.kind === 'step-failed') this.failedStage = event.stage;
    this.lastStage = event.stage;
    if (!this.commandsOnStderr() || this.openGroup === event.stage) return;
    this.endGroup();
    this.stderr(`${formatCommand('group', `slipway ${event.stage}`)}${EOL}`);
    this.openGroup = event.stage;
  }

  /** The result document a command printed. */
  record(result: unknown): void {
    this.result = result;
    if (isSmokeReport(result)) this.smokeReport(result);
  }

  /** A Markdown section for the job summary that a command renders itself (status's table). */
  section(markdown: string): void {
    this.sections.push(markdown);
  }

  /** A smoke report (release reports one per pushed digest). */
  smokeReport(report: SmokeReport): void {
    if (!this.smoke.includes(report)) this.smoke.push(report);
  }

  /** Closes the open log group, so what follows is not hidden in it. */
  endGroup(): void {
    if (this.openGroup === undefined) return;
    this.stderr(`${formatCommand('endgroup', '')}${EOL}`);
    this.openGroup = undefined;
  }

  private renderSummary: typeof renderSummary | undefined;

  /** Loads the job summary renderer (@actions/core) when the run writes a summary: only then is it paid for. */
  async prepare(): Promise<void> {
    if (this.env.GITHUB_STEP_SUMMARY) this.renderSummary ??= (await import('./summary.js')).renderSummary;
  }

  /** Writes the annotations, the step outputs and the job summary of the finished run (after {@link prepare}). */
  finish(command: string, exitCode: number, error?: SlipwayError): void {
    this.endGroup();
    const stage = error ? (this.failedStage ?? STAGE_OF[error.code] ?? this.lastStage) : undefined;
    if (error && this.commandsOnStderr()) this.annotate(error);
    const ok = exitCode === 0;
    const result = this.result ?? (error ? { ok: false, error: error.toJSON() } : undefined);
    const outputs: Record<string, string> = { ok: String(ok), 'exit-code': String(exitCode) };
    if (result !== undefined) outputs.result = JSON.stringify(result);
    const images = imagesOf(result);
    if (images.length > 0) {
      const digests = Object.fromEntries(images.filter((i) => i.digest).map((i) => [i.name, i.digest]));
      const tags = Object.fromEntries(images.map((i) => [i.name, i.tags ?? []]));
      if (Object.keys(digests).length > 0) outputs.digests = JSON.stringify(digests);
      outputs.tags = JSON.stringify(tags);
      for (const i of images) {
        if (i.digest) outputs[`digest-${i.name}`] = i.digest;
        if (i.tags) outputs[`tags-${i.name}`] = i.tags.join('\n');
      }
    }
    const verdict = this.smokeVerdict();
    if (verdict) outputs.smoke = verdict;
    if (error) outputs['failed-stage'] = stage ?? '';

    const outFile = this.env.GITHUB_OUTPUT;
    if (outFile) {
      const text = Object.entries(outputs)
        .map(([k, v]) => formatOutput(k, this.redactor.redact(v)))
        .join('');
      appendFileSync(outFile, text, 'utf8');
    }
    const summaryFile = this.env.GITHUB_STEP_SUMMARY;
    if (summaryFile) {
      if (!this.renderSummary) throw new Error('ActionsReporter.finish before prepare()');
      const md = this.renderSummary({
        command,
        exitCode,
        result,
        smoke: this.smoke,
        sections: this.sections,
        ...(error
          ? {
              error: {
                code: error.code,
                message: error.message,
                details: error.details,
                ...(error.hint ? { hint: error.hint } : {}),
                ...(stage ? { stage } : {}),
                untouched: untouched(stage),
              },
            }
          : {}),
      });
      appendFileSync(summaryFile, `${this.redactor.redact(md)}${EOL}`, 'utf8');
    }
  }

  private smokeVerdict(): string | undefined {
    if (this.smoke.length > 0) {
      if (this.smoke.some((r) => !r.passed)) return 'failed';
      return this.smoke.every((r) => r.skipped) ? 'skipped' : 'passed';
    }
    const images = imagesOf(this.result);
    const verdicts = images.map((i) => i.smoke).filter((v): v is string => typeof v === 'string');
    if (verdicts.length === 0) return undefined;
    return verdicts.every((v) => v === 'passed') ? 'passed' : 'failed';
  }

  private annotate(error: SlipwayError): void {
    const title = `slipway: ${error.code}`;
    const manifest = error.resource;
    const located =
      LOCATED.has(error.code) && manifest && error.details.length > 0
        ? error.details.map((d) => ({ d, loc: locateDetail(d.at, manifest, this.workspace) }))
        : [];
    if (located.length === 0) {
      this.stderr(`${formatCommand('error', this.redactor.redact(error.message), { title })}${EOL}`);
      return;
    }
    for (const { d, loc } of located) {
      const message = `${d.at}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ''}`;
      this.stderr(
        `${formatCommand('error', this.redactor.redact(message), {
          title,
          ...(loc ? { file: loc.file, line: loc.line, ...(loc.col ? { col: loc.col } : {}) } : {}),
        })}${EOL}`,
      );
    }
  }
}

interface ImageLike {
  name: string;
  digest?: string;
  tags?: string[];
  smoke?: string;
}

function imagesOf(result: unknown): ImageLike[] {
  const images = (result as { images?: unknown } | undefined)?.images;
  if (!Array.isArray(images)) return [];
  return images.filter((i): i is ImageLike => typeof (i as ImageLike)?.name === 'string');
}

function isSmokeReport(x: unknown): x is SmokeReport {
  return typeof x === 'object' && x !== null && 'assertions' in x && 'specDigest' in x && 'imageName' in x;
}
