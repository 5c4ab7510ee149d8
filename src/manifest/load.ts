import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Yaml from 'yaml';
import type { z } from 'zod';
import { type ErrorDetail, SlipwayError } from '../core/errors.js';
import { type Manifest, ManifestSchema } from './schema.js';

// yaml (CommonJS) loads only to report duplicate keys, not when the CLI starts.
const requireHere = createRequire(import.meta.url);

/** A manifest together with where it was read from (relative paths resolve against `dir`). */
export interface LoadedManifest {
  /** Absolute path of the manifest file. */
  readonly file: string;
  /** Absolute directory relative paths in the manifest resolve against. */
  readonly dir: string;
  readonly manifest: Manifest;
}

/** Formats a zod issue path as a JSON path: `images.platform-agent.smoke.assertions[2].kind`. */
export function jsonPath(p: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

function hintFor(issue: z.core.$ZodIssue): string | undefined {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `remove ${issue.keys.map((k) => `"${k}"`).join(', ')} or check the spelling against schema/manifest.schema.json`;
    case 'invalid_union': {
      const last = issue.path[issue.path.length - 1];
      if (last === 'source') {
        return 'a template source is one of {"git": URL}, {"github": "owner/repo"}, {"gitea": "owner/repo", "apiUrl": URL} or {"path": DIR}';
      }
      if (last === 'ready')
        return 'readiness is one of {"log": REGEX}, {"file": PATH} or {"exec": [COMMAND...]}';
      if (last === 'kind') return 'an assertion kind is one of "path", "template", "absent", "exec"';
      return undefined;
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
}

/** Turns zod issues into located details (JSON path, message, hint). */
export function issuesToDetails(issues: readonly z.core.$ZodIssue[]): ErrorDetail[] {
  return issues.map((issue) => {
    const at = jsonPath(issue.path);
    let message = issue.message;
    if (issue.code === 'invalid_key') {
      const key = issue.path[issue.path.length - 1];
      message = `invalid name "${String(key)}": ${issue.issues.map((i) => i.message).join('; ')}`;
    }
    if (issue.code === 'unrecognized_keys')
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    const hint = hintFor(issue);
    return hint === undefined ? { at, message } : { at, message, hint };
  });
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  return { line, col };
}

/** Parses manifest JSON text; `file` names the source in errors. */
export function parseManifest(text: string, file: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? lineCol(text, Number(pos[1])) : undefined;
    throw new SlipwayError(
      'MANIFEST_PARSE',
      `${file}${where ? `:${where.line}:${where.col}` : ''}: not valid JSON (${msg})`,
      {
        resource: file,
        hint: 'fix the JSON syntax; editors validate it against schema/manifest.schema.json',
      },
    );
  }
  // JSON.parse keeps the last of two equal keys, so two templates with one name would silently
  // become one. JSON is YAML 1.2, and the yaml parser reports duplicate keys with positions; it
  // runs only when the text has more keys than the parsed value kept.
  const duplicates =
    keysWritten(text) === keysKept(raw)
      ? []
      : (requireHere('yaml') as typeof Yaml)
          .parseDocument(text, { uniqueKeys: true })
          .errors.filter((e) => e.code === 'DUPLICATE_KEY');
  if (duplicates.length > 0) {
    const details = duplicates.map((e) => {
      const lp = e.linePos?.[0];
      return {
        at: `${file}${lp ? `:${lp.line}:${lp.col}` : ''}`,
        message: 'duplicate key: names must be unique',
      };
    });
    throw new SlipwayError(
      'MANIFEST_INVALID',
      `${file}: duplicate key${details.length > 1 ? 's' : ''} at ${details.map((d) => d.at.slice(file.length + 1)).join(', ')}; template, image and runtime names must be unique`,
      { resource: file, details, hint: 'rename or remove the repeated entry' },
    );
  }
  const result = ManifestSchema.safeParse(raw);
  if (!result.success) {
    const details = issuesToDetails(result.error.issues);
    throw new SlipwayError(
      'MANIFEST_INVALID',
      `${file}: ${details.length} problem${details.length === 1 ? '' : 's'}:\n${details
        .map((d) => `  ${d.at}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ''}`)
        .join('\n')}`,
      { resource: file, details, hint: 'see the manifest format in README.md' },
    );
  }
  return result.data;
}

/** Reads and validates a manifest file; a relative `file` resolves against `options.cwd` but is reported as given. */
export async function loadManifest(file: string, options: { cwd?: string } = {}): Promise<LoadedManifest> {
  const abs = path.resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SlipwayError('MANIFEST_NOT_FOUND', `cannot read manifest ${file}${code ? ` (${code})` : ''}`, {
      resource: file,
      hint: 'run from the directory holding manifest.json, or pass --manifest PATH',
    });
  }
  return { file: abs, dir: path.dirname(abs), manifest: parseManifest(text, file) };
}

/** How many object keys a valid JSON text writes: strings followed by a colon. */
function keysWritten(text: string): number {
  let keys = 0;
  let i = 0;
  while (i < text.length) {
    if (text.charCodeAt(i) !== 0x22) {
      i++;
      continue;
    }
    // A string: to its closing quote, passing over escapes.
    i++;
    while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
    i++;
    while (i < text.length && /\s/.test(text.charAt(i))) i++;
    if (text.charCodeAt(i) === 0x3a) keys++;
  }
  return keys;
}

/** How many object keys a parsed JSON value holds, at every depth. */
function keysKept(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + keysKept(v), 0);
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  for (const v of Object.values(value)) n += 1 + keysKept(v);
  return n;
}
