import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Yaml from 'yaml';
import type { Node } from 'yaml';

// yaml (CommonJS) loads only when an annotation is located, not when the CLI starts.
const requireHere = createRequire(import.meta.url);

/** A file position an annotation can point at. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly col?: number;
}

/** Splits `images.platform-agent.smoke.assertions[2].kind` into keys and indexes. */
export function splitJsonPath(at: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const m of at.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/**
 * The line of a JSON path in a manifest's text: the deepest node of the path that exists (a
 * missing key points at its parent object), 1-based. `yaml` parses JSON and keeps node ranges.
 */
export function lineOfJsonPath(text: string, at: string): { line: number; col: number } {
  const { isMap, isSeq, LineCounter, parseDocument } = requireHere('yaml') as typeof Yaml;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: false });
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
  for (const key of splitJsonPath(at)) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      // Point at the key (`"ref": …`), where a reader looks for the field.
      const keyNode = pair.key as Node | null;
      if (keyNode?.range) offset = keyNode.range[0];
      next = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
      const range = (next as Node | undefined)?.range;
      if (!range) break;
      offset = range[0];
    } else break;
    node = next;
  }
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, col: pos.col };
}

/**
 * Where an error detail points: `file:line[:col]` (a Dockerfile line, relative to the manifest
 * directory, or an absolute manifest position) or a JSON path into the manifest. Files are made
 * relative to `root` (the workspace), as annotations expect. Undefined when nothing can be read.
 */
export function locateDetail(at: string, manifestFile: string, root: string): Location | undefined {
  const rel = (f: string) =>
    path
      .relative(root, path.resolve(path.dirname(manifestFile), f))
      .split(path.sep)
      .join('/');
  const fileLine = /^(.+?):(\d+)(?::(\d+))?$/.exec(at);
  if (fileLine?.[1] && fileLine[2]) {
    return {
      file: rel(fileLine[1]),
      line: Number(fileLine[2]),
      ...(fileLine[3] ? { col: Number(fileLine[3]) } : {}),
    };
  }
  // A file without a line (`dockerfiles/Dockerfile.x: no FROM`): its first line.
  if (at.includes('/')) return { file: rel(at), line: 1 };
  let text: string;
  try {
    text = readFileSync(manifestFile, 'utf8');
  } catch {
    return undefined;
  }
  if (at === '(root)') return { file: rel(manifestFile), line: 1 };
  const { line, col } = lineOfJsonPath(text, at);
  return { file: rel(manifestFile), line, col };
}
