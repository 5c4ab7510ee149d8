/**
 * The structure ARCHITECTURE.md describes, checked on the sources: layers import only layers
 * below them, dockerode is constructed in one place, and the library never touches process.env.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../src');

/** The layers, lowest first: a folder may import itself and the folders before it. */
const ORDER = [
  'core',
  'manifest',
  'sources',
  'stage',
  'preflight',
  'verify',
  'plan',
  'engine',
  'build',
  'publish',
  'smoke',
  'attest',
  'promote',
  'status',
  'release',
  'app',
  'cli',
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

const files = sources(src).map((file) => ({
  rel: path.relative(src, file),
  layer: path.relative(src, file).split(path.sep)[0] ?? '',
  text: readFileSync(file, 'utf8'),
}));

describe('architecture', () => {
  it('knows every folder under src/', () => {
    const folders = new Set(files.filter((f) => f.rel.includes(path.sep)).map((f) => f.layer));
    expect([...folders].filter((f) => !ORDER.includes(f))).toEqual([]);
  });

  it('layers import only themselves and the layers below them', () => {
    const upward: string[] = [];
    for (const f of files) {
      if (!f.rel.includes(path.sep)) continue;
      // Static imports and the dynamic ones that load a command's implementation lazily.
      for (const m of f.text.matchAll(/(?:from |import\()'(\.\.?\/[^']+)'/g)) {
        const target = path.relative(src, path.resolve(src, path.dirname(f.rel), m[1] ?? ''));
        const layer = target.split(path.sep)[0] ?? '';
        if (!target.includes(path.sep) || layer === f.layer) continue;
        if (ORDER.indexOf(layer) > ORDER.indexOf(f.layer)) upward.push(`${f.rel} imports ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('manifest imports only core', () => {
    const outside = files
      .filter((f) => f.layer === 'manifest')
      .flatMap((f) =>
        [...f.text.matchAll(/(?:from |import\()'\.\.\/([^/']+)\//g)].map((m) => `${f.rel}: ${m[1]}`),
      )
      .filter((s) => !s.endsWith(': core'));
    expect(outside).toEqual([]);
  });

  it('dockerode is constructed in exactly one place', () => {
    const users = files.filter((f) => /from 'dockerode'|new Docker\(/.test(f.text)).map((f) => f.rel);
    expect(users).toEqual([path.join('engine', 'docker-engine.ts')]);
  });

  it('the library neither reads nor assigns process.env (only the CLI edge does)', () => {
    const readers = files
      .filter((f) => f.layer !== 'cli')
      .filter((f) => /process\.env\b/.test(f.text.replace(/\/\/.*$|\/\*[\s\S]*?\*\/|^\s*\*.*$/gm, '')))
      .map((f) => f.rel);
    expect(readers).toEqual([]);
  });
});
