/**
 * Finds credentials inside file content (a URL with `user:token@`, GitHub, GitLab, npm, Slack
 * and AWS key formats, private-key PEM blocks) so staging refuses to bake them into an image.
 * Reports the line and the kind of secret, never the value. Placeholders (`${TOKEN}`, `<token>`,
 * `ghp_xxx…`, AWS's `…EXAMPLE` keys) and public material (public keys, certificates) pass.
 */

/** One credential found in a file: where and what kind, never the value. */
export interface ContentSecret {
  /** 1-based line number. */
  readonly line: number;
  /** What it looks like, e.g. `a GitHub token`. */
  readonly what: string;
}

/** Files larger than this are not scanned (templates are config and scripts, not data). */
export const SCAN_MAX_BYTES = 1024 * 1024;

interface TokenRule {
  readonly re: RegExp;
  readonly what: string;
}

const TOKEN_RULES: readonly TokenRule[] = [
  { re: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b/g, what: 'a GitHub token' },
  { re: /\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b/g, what: 'a GitHub token' },
  { re: /\bglpat-[A-Za-z0-9_-]{20,}/g, what: 'a GitLab token' },
  { re: /\bnpm_[A-Za-z0-9]{36}\b/g, what: 'an npm token' },
  { re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, what: 'an AWS access key' },
  { re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, what: 'a Slack token' },
];

// scheme://user:secret@host, the secret being anything up to the '@' without spaces or slashes.
const URL_CREDENTIAL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@:'"]+:([^\s/@'"]+)@[^\s/@'"]/gi;

// A literal every rule above (and the private-key header) needs: text without one holds no
// credential, and is not split into lines nor run through each rule.
const ANCHOR = /:\/\/|gh[pousr]_|github_pat_|glpat-|npm_|AKIA|ASIA|xox[abposr]-|PRIVATE KEY/;

const PRIVATE_KEY_BEGIN = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;
// A real PEM block goes on with base64 or an encryption header, not `...` or prose.
const PEM_BODY = /^\s*(?:[A-Za-z0-9+/=]{40,}|Proc-Type:|Comment:|Version:)/;

/** True for a value someone wrote to stand for a secret rather than a secret itself. */
export function isPlaceholder(value: string): boolean {
  if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(value)) return true; // ${TOKEN}, $TOKEN
  if (/^%\(?[A-Za-z_]*\)?s?$|^%[A-Z_]+%$/.test(value)) return true; // %s, %(pw)s, %TOKEN%
  if (/^(<.*>|\{\{.*\}\}|\[.*\]|\*+|\.+)$/.test(value)) return true; // <token>, {{ token }}, ***
  if (/example|sample|dummy|placeholder|changeme|your[_-]?(token|password|key)/i.test(value)) return true;
  if (/^(password|passwd|pass|secret|token|pw)$/i.test(value)) return true;
  // Real tokens are random: a body of a few repeated characters (ghp_xxxx…, AKIA0000…) is not one.
  const body = value.replace(/^[a-z]+[_-]|^(AKIA|ASIA)/i, '');
  return new Set(body).size < 6;
}

/** True when the buffer looks like text (no NUL byte in its first 8 KiB). */
export function isTextLike(content: Uint8Array): boolean {
  return !content.subarray(0, 8192).includes(0);
}

/**
 * Every credential in `content`, in line order (at most one per rule and line). Binary files and
 * files over {@link SCAN_MAX_BYTES} are not scanned.
 */
export function scanContent(content: Uint8Array | string): ContentSecret[] {
  const size = typeof content === 'string' ? content.length : content.byteLength;
  if (size > SCAN_MAX_BYTES) return [];
  if (typeof content !== 'string' && !isTextLike(content)) return [];
  if (typeof content !== 'string') {
    // A view, not a copy. Every rule needs an ASCII literal, so a Latin-1 reading (one byte per
    // character, no decoding) finds the same anchors as UTF-8; most files have none and end here.
    const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    if (!ANCHOR.test(bytes.toString('latin1'))) return [];
    return scanText(bytes.toString('utf8'));
  }
  if (!ANCHOR.test(content)) return [];
  return scanText(content);
}

/** {@link scanContent} on decoded text that holds an anchor. */
function scanText(text: string): ContentSecret[] {
  const lines = text.split(/\r?\n/);
  const found: ContentSecret[] = [];
  lines.forEach((line, i) => {
    if (!ANCHOR.test(line)) return;
    const at = i + 1;
    for (const m of line.matchAll(URL_CREDENTIAL)) {
      if (!isPlaceholder(m[1] ?? '')) {
        found.push({ line: at, what: 'a URL with a password or token' });
        break;
      }
    }
    for (const rule of TOKEN_RULES) {
      for (const m of line.matchAll(rule.re)) {
        if (!isPlaceholder(m[0])) {
          found.push({ line: at, what: rule.what });
          break;
        }
      }
    }
    if (PRIVATE_KEY_BEGIN.test(line) && PEM_BODY.test(lines[i + 1] ?? '')) {
      found.push({ line: at, what: 'a private key' });
    }
  });
  return found;
}
