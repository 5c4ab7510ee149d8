import path from 'node:path';
import picomatch from 'picomatch';

/**
 * What staging keeps, drops and refuses, as pure functions of a path (and, for a few rc files,
 * of their content). Paths are POSIX, relative to the staged template's root.
 */

/** True for `.git` itself and anything under a `.git` directory, at any depth (submodules too). */
export function isGitPath(relPath: string): boolean {
  return relPath.split('/').includes('.git');
}

/** A predicate for one template's `include` / `exclude` globs (dotfiles match like any other file). */
export function selectionFilter(
  include?: readonly string[],
  exclude?: readonly string[],
): (p: string) => boolean {
  const opts = { dot: true };
  const inc = include && include.length > 0 ? picomatch([...include], opts) : () => true;
  const exc = exclude && exclude.length > 0 ? picomatch([...exclude], opts) : () => false;
  return (p) => inc(p) && !exc(p);
}

// Names that are credentials whatever they contain.
const SENSITIVE_NAMES: ReadonlyArray<[RegExp, string]> = [
  [/^\.env$/, 'a dotenv file'],
  [/^\.env\..+$/, 'a dotenv file'],
  [/\.pem$/i, 'a PEM key or certificate'],
  [/\.key$/i, 'a private key'],
  [/^id_(rsa|ed25519|ecdsa|dsa)(\.|$)/, 'an SSH key'],
  [/\.(p12|pfx)$/i, 'a PKCS#12 key store'],
  [/^credentials(\.json)?$/, 'a cloud CLI credentials file'],
];

// rc files that are only credentials when they hold a secret (an .npmrc may just set a registry).
const SECRET_IN_RC: Readonly<Record<string, RegExp>> = {
  '.npmrc': /(_authToken|_auth|_password|\btoken)\s*=/i,
  '.netrc': /\b(password|account)\s+\S/i,
  '.pypirc': /\b(password|token)\s*[:=]/i,
  '.git-credentials': /[a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:[^\s/@]+@/i,
};

/** True when the file's name means its content must be read to judge it (see {@link sensitiveReason}). */
export function needsContentCheck(relPath: string): boolean {
  return Object.hasOwn(SECRET_IN_RC, path.posix.basename(relPath));
}

/**
 * Why a file looks like a credential, or undefined when it does not. `content` is consulted only
 * for rc files ({@link needsContentCheck}); without it they are judged harmless.
 */
export function sensitiveReason(relPath: string, content?: Buffer | string): string | undefined {
  const base = path.posix.basename(relPath);
  for (const [re, what] of SENSITIVE_NAMES) if (re.test(base)) return what;
  const secret = SECRET_IN_RC[base];
  if (secret && content !== undefined && secret.test(content.toString())) return `a ${base} holding a secret`;
  return undefined;
}

/** A predicate for a template's `allowSensitive` globs. */
export function allowSensitiveFilter(globs?: readonly string[]): (p: string) => boolean {
  return globs && globs.length > 0 ? picomatch([...globs], { dot: true }) : () => false;
}

/**
 * The problem with an archive entry name, or undefined when it is a safe relative path.
 * Absolute names, `..` segments and drive letters would write outside the target.
 */
export function unsafeEntryName(name: string): string | undefined {
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) return 'is an absolute path';
  if (name.split(/[\\/]/).includes('..')) return "contains a '..' segment";
  return undefined;
}

/**
 * The problem with a symlink at `relPath` pointing at `target`, judged lexically, or undefined
 * when it stays inside the template root. (Staging also checks the resolved path on disk.)
 */
export function unsafeLinkTarget(relPath: string, target: string): string | undefined {
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) return `points at the absolute path ${target}`;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(relPath), target));
  if (resolved === '..' || resolved.startsWith('../')) return `points outside the template (${target})`;
  return undefined;
}
