import { sha256Hex } from '../core/tree-digest.js';
import type { Assertion, SmokeSpec } from '../manifest/schema.js';

/** Why a smoke run failed before or instead of its assertions (stable values, for CI and records). */
export type SmokeFailureCode =
  | 'no-spec'
  | 'no-assertions'
  | 'engine-unreachable'
  | 'registry-unreachable'
  | 'pull-failed'
  | 'image-not-found'
  | 'start-failed'
  | 'exited-early'
  | 'readiness-timeout'
  | 'assertion-failed';

/** The outcome of one assertion. */
export interface AssertionResult {
  readonly name: string;
  readonly kind: Assertion['kind'];
  readonly passed: boolean;
  /** What the spec asked for, in words or values. */
  readonly expected?: unknown;
  /** What the running container showed. */
  readonly observed: unknown;
  readonly message: string;
}

/** What was copied out of the container, for a human reading a failed run. */
export interface SmokeEvidence {
  /** Run id; every container and volume of the run carries the label `dev.slipway.smoke=<runId>`. */
  readonly runId: string;
  /** The local image id that was booted. */
  readonly imageId: string | null;
  readonly containerId: string | null;
  /** Fresh named volumes mounted at the spec's `emptyVolumes`, by mount path. */
  readonly volumes: Record<string, string>;
  /** The last lines the container wrote (stdout and stderr). */
  readonly logTail: string[];
  /** The container's exit code when it stopped before the run ended, else null. */
  readonly exitCode: number | null;
  /** How readiness was reached (`log /regex/ after 1.2s`), or null. */
  readonly readiness: string | null;
  /** Entries of each asserted directory (relative paths, `/` suffix for directories), capped. */
  readonly listings: Record<string, string[]>;
}

/** The smoke run's report: a verdict, every assertion, and evidence. */
export interface SmokeReport {
  /** What was asked to boot (reference or local image id). */
  readonly image: string;
  /** The manifest image name. */
  readonly imageName: string;
  /** The registry digest that was booted (post-push), or null for a local image. */
  readonly digest: string | null;
  /** `sha256:` of the canonical JSON of the spec (a changed spec needs a new run). */
  readonly specDigest: string;
  readonly passed: boolean;
  /** True only when a missing spec was allowed to skip (never in CI). */
  readonly skipped: boolean;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly assertions: AssertionResult[];
  readonly failure?: { readonly code: SmokeFailureCode; readonly message: string };
  readonly evidence: SmokeEvidence;
}

/** JSON with object keys sorted recursively, so equal specs always hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `sha256:<hex>` of the canonical JSON of a smoke spec (`null` when there is none). */
export function specDigest(spec: SmokeSpec | undefined): string {
  return `sha256:${sha256Hex(canonicalJson(spec ?? null))}`;
}

/** The display name of an assertion: its own `name`, or one derived from what it checks. */
export function assertionName(a: Assertion): string {
  if (a.name) return a.name;
  switch (a.kind) {
    case 'path':
      return `${a.path} is ${a.type === 'any' ? 'present' : `a ${a.type}`}${a.minSize !== undefined ? ` of at least ${a.minSize} bytes` : ''}${a.mode ? ` with mode ${a.mode}` : ''}`;
    case 'template':
      return `${a.path} matches template ${a.template}`;
    case 'absent':
      return `no ${a.patterns.join(', ')} under ${a.under}`;
    case 'exec':
      return `exec ${a.command.join(' ')}`;
  }
}

/** A one-line summary, e.g. `7/7 assertions passed` or `failed (exited-early): ...`. */
export function summarize(report: SmokeReport): string {
  const n = report.assertions.length;
  const ok = report.assertions.filter((a) => a.passed).length;
  if (report.skipped) return `skipped: ${report.failure?.message ?? 'no smoke spec'}`;
  if (report.passed) return `${ok}/${n} assertions passed`;
  const counts = n > 0 ? ` (${ok}/${n} assertions passed)` : '';
  return `failed ${report.failure?.code ?? 'assertion-failed'}: ${report.failure?.message ?? ''}${counts}`;
}

/** Formats an observed/expected value for a text line. */
export function showValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** The report as text lines: a verdict, one PASS/FAIL line per assertion with the observed value, evidence on failure. */
export function renderReport(report: SmokeReport): string[] {
  const lines: string[] = [];
  const verdict = report.skipped ? 'SKIPPED' : report.passed ? 'PASSED' : 'FAILED';
  lines.push(`smoke ${report.imageName}: ${verdict} (${(report.durationMs / 1000).toFixed(1)}s)`);
  lines.push(`  image:  ${report.image}`);
  if (report.digest) lines.push(`  digest: ${report.digest}`);
  lines.push(`  spec:   ${report.specDigest}`);
  if (report.evidence.readiness) lines.push(`  ready:  ${report.evidence.readiness}`);
  for (const a of report.assertions) {
    lines.push(`  ${a.passed ? 'PASS' : 'FAIL'} ${a.name}: ${a.message}`);
    if (!a.passed) {
      if (a.expected !== undefined) lines.push(`       expected: ${showValue(a.expected)}`);
      lines.push(`       observed: ${showValue(a.observed)}`);
    }
  }
  if (report.failure && report.failure.code !== 'assertion-failed') {
    lines.push(`  ${report.skipped ? 'skip' : 'FAIL'} [${report.failure.code}] ${report.failure.message}`);
  }
  if (!report.passed && report.evidence.logTail.length > 0) {
    lines.push('  container log (tail):');
    for (const l of report.evidence.logTail.slice(-20)) lines.push(`    | ${l}`);
  }
  lines.push(`  ${summarize(report)}`);
  return lines;
}
