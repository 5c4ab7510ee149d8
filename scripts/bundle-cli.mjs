// Bundles the CLI that bin/slipway.js runs (dist/cli-bundle/) from the compiled dist/cli/main.js,
// after `tsc` (npm run build). Why: a CLI run used to spend most of its start-up resolving, reading
// and linking about 200 module files (zod alone is 95 of them); a handful of bundled chunks load in
// a third less time, on every command. The library (dist/index.js) is not bundled.
// - Dynamic imports stay dynamic (code splitting): a command still loads only what it uses.
// - Packages loaded through createRequire (dockerode, the AWS SDK, undici, ...) are not bundled: they
//   load from node_modules, lazily, as before.
// - Every chunk sits in one directory, one level below dist/, like dist/cli/: code that finds
//   package.json relative to its own file (src/cli/version.ts) finds the same file.
// - meta.json (esbuild's metafile) says which sources and packages went into which chunk
//   (test/cli/startup.int.test.ts reads it).
// - A rebuild replaces each changed file by a rename and leaves unchanged ones alone, so a CLI
//   process started from an earlier build (tests build and run the bin side by side) never finds
//   a chunk missing or half-written; files the new build no longer has are removed last.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'cli-bundle');
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: true,
  metafile: true,
  write: false,
  logLevel: 'warning',
  // Bundled CommonJS packages use require() and __filename (write-file-atomic hashes it into its
  // temporary names): give every chunk what a CommonJS module has, for the chunk's own file.
  banner: {
    js: [
      "import { createRequire as __slipwayRequire } from 'node:module';",
      "import { fileURLToPath as __slipwayPath } from 'node:url';",
      'const require = __slipwayRequire(import.meta.url);',
      'const __filename = __slipwayPath(import.meta.url);',
      "const __dirname = __slipwayPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
});

/** Writes `bytes` to `file` by a rename, unless the file already holds exactly them. */
function place(file, bytes) {
  try {
    if (Buffer.compare(readFileSync(file), bytes) === 0) return;
  } catch {
    // Not there yet.
  }
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, bytes);
  renameSync(temp, file);
}

mkdirSync(outdir, { recursive: true });
const written = new Set(['meta.json']);
for (const out of result.outputFiles) {
  place(out.path, Buffer.from(out.contents));
  written.add(path.basename(out.path));
}
place(path.join(outdir, 'meta.json'), Buffer.from(`${JSON.stringify(result.metafile)}\n`));
for (const name of readdirSync(outdir)) {
  // Another build's file on its way in (`*.tmp`) is that build's.
  if (!written.has(name) && !name.endsWith('.tmp')) rmSync(path.join(outdir, name), { force: true });
}
