#!/usr/bin/env node
// The installed entry point: runs the CLI bundled into dist/cli-bundle/ (scripts/bundle-cli.mjs).
// A clone builds dist on `npm ci` (the `prepare` script); the npm tarball ships it (`prepack`). runProcess turns SIGINT/SIGTERM
// into a clean stop (containers removed, tags and pins untouched) and exit 130/143.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

// Node 22.1+ keeps V8's compiled code of every module it loads on disk (in the OS temp dir, or
// $NODE_COMPILE_CACHE), so later runs skip parsing commander, undici and the CLI. Absent on Node 20.
module.enableCompileCache?.();
// On Node 20 a process that made an HTTP request waits at exit (~60 ms) for V8 to finish
// optimising undici's WebAssembly HTTP parser in the background (Node 24 does not). The baseline
// compiler alone parses as fast for what Slipway sends (manifests, streamed blobs), so use only it.
// Set before any WebAssembly is compiled; changes nothing but WebAssembly code generation.
if (Number(process.versions.node.split('.')[0]) === 20) v8.setFlagsFromString('--liftoff-only');

// SLIPWAY_DEBUG prints stack traces of unexpected errors: name the source files in them.
if (process.env.SLIPWAY_DEBUG) process.setSourceMapsEnabled(true);

const entry = new URL('../dist/cli-bundle/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    'error: slipway is not built: dist/cli-bundle/main.js is missing\n' +
      'hint: run `npm ci` (its prepare script builds dist) or `npm run build` in the slipway checkout\n',
  );
  process.exit(1);
}
const { runProcess } = await import(entry.href);
process.exitCode = await runProcess(process.argv.slice(2));
