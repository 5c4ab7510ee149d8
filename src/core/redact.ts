/**
 * Credential redaction. Every string that leaves the library through an error message or an
 * event passes through a {@link Redactor}, so a token handed to a source or a registry can never
 * reach a log line, even when a tool echoes it back (git prints URLs, registries echo headers).
 */

const PLACEHOLDER = '***';

// user:password@ in URLs, and the usual header/query spellings of tokens.
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s:]+(?::[^/@\s]*)?@/gi;
const AUTH_HEADER =
  /\b(authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)(basic|bearer|token)\s+[^\s"',}]+/gi;
const QUERY_SECRET = /([?&](?:access_token|token|password|X-Amz-Signature|X-Amz-Credential)=)[^&\s"']+/gi;

/** Replaces known secrets and credential-shaped substrings with `***`. */
export class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers secret values (tokens, passwords) to scrub wherever they appear. */
  add(...values: Array<string | undefined | null>): this {
    for (const v of values) {
      // Very short values would redact ordinary words; nobody uses a 3-character token.
      if (v && v.length >= 4) {
        this.secrets.add(v);
        // Registries and git often show the base64 of user:token, too.
        this.secrets.add(Buffer.from(v).toString('base64'));
      }
    }
    return this;
  }

  /** The input with every registered secret and credential-shaped substring replaced. */
  redact(text: string): string {
    let out = text;
    // Longest first, so a secret that contains another is replaced whole.
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) {
      out = out.split(s).join(PLACEHOLDER);
    }
    return out
      .replace(URL_USERINFO, `$1${PLACEHOLDER}@`)
      .replace(AUTH_HEADER, `$1$2$3 ${PLACEHOLDER}`)
      .replace(QUERY_SECRET, `$1${PLACEHOLDER}`);
  }
}

/** Redacts credential-shaped substrings (URL user-info, auth headers, token query params). */
export function redactText(text: string): string {
  return new Redactor().redact(text);
}
