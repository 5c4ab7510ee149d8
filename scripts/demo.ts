// `npm run demo`: the whole pipeline on the embedded local defaults, through the real CLI:
// verify -> release (stage, build, push to the local registry, smoke the pushed digests, move
// the moving tags, promote the runtime pin in a file pin store) -> show the pins and history.
// `npm run demo` first runs `scripts/services.sh up` (predemo), which starts the engine, the
// registry and the local root image.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const registry = `oci://${process.env.SLIPWAY_REGISTRY_ADDR ?? '127.0.0.1:5000'}`;
const rootImage = process.env.SLIPWAY_ROOT_IMAGE ?? 'slipway.local/root:busybox';
const pins = process.env.SLIPWAY_DEMO_PIN_STORE ?? 'file:.slipway/demo-pins.json';
const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();

async function step(title: string, argv: string[]): Promise<void> {
  process.stderr.write(`\n=== ${title}\n$ slipway ${argv.join(' ')}\n`);
  const code = await main(argv, { cwd: repo });
  if (code !== 0) {
    process.stderr.write(`\ndemo: "${title}" failed with exit code ${code}\n`);
    process.exit(code);
  }
}

await step('verify the manifest (schema, pinning contract, Dockerfile preflight)', ['verify']);
await step('release: stage, build, push, smoke, move tags, promote', [
  'release',
  '--registry',
  registry,
  '--env',
  'demo',
  '--sha',
  sha,
  '--build-arg',
  `ROOT_IMAGE=${rootImage}`,
  '--pins',
  pins,
  '--promote',
  '--by',
  'demo',
  '--junit',
  '.slipway/demo-smoke-junit.xml',
]);
await step('the runtime pins', ['pins', '--store', pins, 'list']);
await step('the platform-agent pin history', ['pins', '--store', pins, 'history', 'platform-agent']);
process.stderr.write(
  '\ndemo: done. The pin store is .slipway/demo-pins.json; smoke reports are in .slipway/demo-smoke-junit.xml.\n',
);
