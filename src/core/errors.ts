/** Stable error codes; each maps to one CLI exit code. */
export type ErrorCode =
  // the user's input is wrong (exit 2 for usage, 1 for refused content)
  | 'USAGE'
  | 'MANIFEST_NOT_FOUND'
  | 'MANIFEST_PARSE'
  | 'MANIFEST_INVALID'
  | 'CONTRACT_VIOLATION'
  | 'PREFLIGHT_FAILED'
  | 'PLAN_INVALID'
  // the operation ran and failed or was refused (exit 1)
  | 'SOURCE_FETCH_FAILED'
  | 'COMMIT_NOT_FOUND'
  | 'STAGING_REFUSED'
  | 'REQUIRED_FILE_MISSING'
  | 'BUILD_FAILED'
  | 'ENGINE_FAILED'
  | 'PUSH_FAILED'
  | 'REGISTRY_ERROR'
  | 'REPOSITORY_NOT_FOUND'
  | 'DIGEST_MISMATCH'
  | 'IMMUTABLE_TAG_CONFLICT'
  | 'SMOKE_FAILED'
  | 'SMOKE_SPEC_INVALID'
  | 'GATE_REFUSED'
  | 'PIN_CONFLICT'
  | 'PIN_NOT_FOUND'
  | 'STORE_ERROR'
  | 'INTERRUPTED'
  // a required service is unreachable (exit 3)
  | 'ENGINE_UNREACHABLE'
  | 'REGISTRY_UNREACHABLE'
  | 'DATABASE_UNREACHABLE'
  | 'GIT_HOST_UNREACHABLE';

/** The CLI exit code for every error code: 2 usage, 3 unreachable service, 1 anything else. */
export function exitCodeFor(code: ErrorCode): 1 | 2 | 3 {
  switch (code) {
    case 'USAGE':
      return 2;
    case 'ENGINE_UNREACHABLE':
    case 'REGISTRY_UNREACHABLE':
    case 'DATABASE_UNREACHABLE':
    case 'GIT_HOST_UNREACHABLE':
      return 3;
    default:
      return 1;
  }
}

/** One located problem inside a larger error (a manifest path, a Dockerfile line). */
export interface ErrorDetail {
  /** Where: a JSON path (`templates.platform-agent.ref`) or `file:line`. */
  readonly at: string;
  readonly message: string;
  readonly hint?: string;
}

/** Options accepted by {@link SlipwayError}. */
export interface SlipwayErrorOptions {
  /** The file, repository, image or pin the error is about. */
  readonly resource?: string;
  /** What the user can do next. */
  readonly hint?: string;
  /** Individual problems, for errors that report several at once. */
  readonly details?: readonly ErrorDetail[];
  readonly cause?: unknown;
}

/** The one error type the library throws for expected failures: a stable code, the resource, a hint. */
export class SlipwayError extends Error {
  readonly code: ErrorCode;
  readonly resource: string | undefined;
  readonly hint: string | undefined;
  readonly details: readonly ErrorDetail[];

  constructor(code: ErrorCode, message: string, options: SlipwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SlipwayError';
    this.code = code;
    this.resource = options.resource;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  /** The CLI exit code this error maps to. */
  get exitCode(): 1 | 2 | 3 {
    return exitCodeFor(this.code);
  }

  /** A plain JSON form for `--json` output (no stack, no cause). */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.resource === undefined ? {} : { resource: this.resource }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details.length === 0 ? {} : { details: this.details }),
    };
  }
}

/** True when `err` is a {@link SlipwayError}, optionally with the given code. */
export function isSlipwayError(err: unknown, code?: ErrorCode): err is SlipwayError {
  return err instanceof SlipwayError && (code === undefined || err.code === code);
}

/** Node network error codes that mean "the service is not there" rather than "it said no". */
const UNREACHABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** True when `err` (or its cause chain) is a connection-level failure. */
export function isUnreachable(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 6; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_ERRNOS.has(code)) return true;
    // ENOENT means "unreachable" only for a connect to a missing unix socket (/var/run/docker.sock),
    // not for a missing file or binary.
    if (code === 'ENOENT' && (cur as { syscall?: unknown }).syscall === 'connect') return true;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.some((e) => isUnreachable(e))) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
