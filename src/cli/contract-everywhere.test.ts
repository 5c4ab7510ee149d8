import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/cli.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dirWith(manifest: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-contract-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  return dir;
}

const image = (extra: Record<string, unknown> = {}) => ({
  dockerfile: 'Dockerfile',
  repository: 'team/app',
  ...extra,
});

const broken = {
  'a pin naming a missing image': {
    manifest: { version: 1, images: { app: image() }, pins: { runtime: { image: 'ghost' } } },
    at: 'pins.runtime.image',
  },
  'a base naming a missing image': {
    manifest: { version: 1, images: { app: image({ base: 'ghost' }) } },
    at: 'images.app.base',
  },
  'a base cycle': {
    manifest: {
      version: 1,
      images: {
        a: image({ base: 'b', repository: 'team/a' }),
        b: image({ base: 'a', repository: 'team/b' }),
      },
    },
    at: 'base',
  },
};

// Every command that reads the manifest; none may start work on a broken one.
const commands: string[][] = [
  ['stage'],
  ['plan'],
  ['build'],
  ['push', '--registry', 'oci://127.0.0.1:9', '--env', 'staging'],
  ['smoke', 'app', '--local', 'no-such-image'],
  ['tag', 'team/app:a', 'team/app:b'],
  ['pins', 'list'],
  ['pins', 'promote', 'runtime', `127.0.0.1:9/team/app@sha256:${'a'.repeat(64)}`, '--dry-run'],
  ['release', '--registry', 'oci://127.0.0.1:9', '--env', 'staging'],
];

describe('the pinning contract runs before every command that reads the manifest', () => {
  for (const [what, { manifest, at }] of Object.entries(broken)) {
    describe(what, () => {
      const dir = dirWith(manifest);
      let verifyMessage: string;

      it('verify reports it (exit 1)', async () => {
        const r = await runCli(['verify'], { cwd: dir });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(at);
        verifyMessage = r.stderr.split('\n').find((l) => l.includes(at)) ?? '';
        expect(verifyMessage).not.toBe('');
      });

      for (const argv of commands) {
        it(`${argv.slice(0, 2).join(' ')} exits 1 before any work, with the message verify gives`, async () => {
          const r = await runCli(['--log-format', 'ndjson', ...argv], { cwd: dir });
          expect(r.code).toBe(1);
          expect(r.stderr).toContain(verifyMessage);
          // No stage started: the only output is the error report.
          expect(r.stderr).not.toMatch(/"kind":"step-start"/);
          expect(r.stdout).toBe('');
        });
      }
    });
  }
});
