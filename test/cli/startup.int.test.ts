/**
 * What the CLI loads to start (ARCHITECTURE.md: "The CLI's start-up loads no heavy adapter"),
 * seen in a real `node bin/slipway.js` process: the packages it loaded, CommonJS and ES modules,
 * whether from node_modules or bundled into the chunks of dist/cli-bundle (scripts/bundle-cli.mjs;
 * its meta.json says which packages each chunk holds).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryAddr, requireServices } from '../support/services.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'slipway-startup-'));
const recorder = path.join(work, 'record-loads.mjs');
const repository = `slipway-test/startup-${Date.now().toString(36)}`;

// Preloaded with --import: records every module URL resolved, and the CommonJS cache at exit.
writeFileSync(
  recorder,
  `import { register, createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const urls = [];
const { port1, port2 } = new MessageChannel();
port1.on('message', (u) => urls.push(u));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(
  'let p; export function initialize(d) { p = d.port; }' +
  'export async function resolve(s, c, n) { const r = await n(s, c); p.postMessage(r.url); return r; }'),
  { data: { port: port2 }, transferList: [port2] });
const cjs = createRequire(import.meta.url).cache;
process.on('exit', () => writeFileSync(process.env.LOADS_OUT, JSON.stringify([...urls, ...Object.keys(cjs)])));
`,
);

/** Runs the built CLI; returns its stdout and the npm packages it loaded. */
function run(argv: string[], name: string): { stdout: string; packages: string[] } {
  const out = path.join(work, `${name}.json`);
  const stdout = execFileSync(process.execPath, ['--import', recorder, 'bin/slipway.js', ...argv], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOADS_OUT: out },
  });
  const loaded = JSON.parse(readFileSync(out, 'utf8')) as string[];
  const bundle = path.join(repoRoot, 'dist', 'cli-bundle');
  const meta = JSON.parse(readFileSync(path.join(bundle, 'meta.json'), 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, unknown> }>;
  };
  const chunks = loaded
    .map((f) => (f.startsWith('file:') ? fileURLToPath(f) : f))
    .filter((f) => f.startsWith(`${bundle}/`) && f.endsWith('.js'));
  // The bin ran the bundle, or these assertions would count nothing bundled.
  expect(chunks).toContain(path.join(bundle, 'main.js'));
  const files = [
    ...loaded,
    ...chunks.flatMap((f) => Object.keys(meta.outputs[path.relative(repoRoot, f)]?.inputs ?? {})),
  ];
  const packages = new Set(
    files.flatMap((f) => {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
      return m?.[1] ? [m[1]] : [];
    }),
  );
  return { stdout, packages: [...packages].sort() };
}

beforeAll(async () => {
  await requireServices(['registry']);
  // The bin runs the built CLI: build it (tsc, then the bundle) from the current sources.
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('CLI start-up', () => {
  it('--version and --help load commander and nothing else', () => {
    const version = run(['--version'], 'version');
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(version.packages).toEqual(['commander']);
    const help = run(['--help'], 'help');
    expect(help.stdout).toContain('Usage: slipway [options] [command]');
    expect(help.packages).toEqual(['commander']);
  });

  it('a retag with --registry loads the registry client only: no schema, engine, pin store or git', async () => {
    // A one-layer image written straight into the registry: config blob, layer blob, manifest.
    const base = `http://${registryAddr}/v2/${repository}`;
    const blob = async (body: Buffer): Promise<{ digest: string; size: number }> => {
      const { createHash } = await import('node:crypto');
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
      const location = new URL(start.headers.get('location') ?? '', base);
      location.searchParams.set('digest', digest);
      const put = await fetch(location, { method: 'PUT', body });
      expect(put.status).toBe(201);
      return { digest, size: body.length };
    };
    const layer = await blob(Buffer.from('not a real layer, never pulled'));
    const config = await blob(
      Buffer.from(
        JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
      ),
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    };
    const put = await fetch(`${base}/manifests/src`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType },
      body: JSON.stringify(manifest),
    });
    expect(put.status).toBe(201);
    const digest = put.headers.get('docker-content-digest');

    const tag = run(
      [
        'tag',
        `${registryAddr}/${repository}:src`,
        `${registryAddr}/${repository}:dst`,
        '--registry',
        `oci://${registryAddr}`,
      ],
      'tag',
    );
    expect(tag.stdout.trim()).toBe(`${registryAddr}/${repository}:dst@${digest}`);
    // p-limit/p-retry (and their own dependencies) come with the OCI client; undici is its HTTP client.
    expect(tag.packages).toEqual([
      'commander',
      'is-network-error',
      'p-limit',
      'p-retry',
      'undici',
      'yocto-queue',
    ]);
  });
});
