// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally
import { describe, expect, it } from 'vitest';
import { gitTemplate, layout } from '../../test/build/layout.js';
import { SlipwayError } from '../core/errors.js';
import type { ManifestInput } from '../manifest/schema.js';
import { verifyManifest } from './verify.js';

async function failure(p: Promise<unknown>): Promise<SlipwayError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof SlipwayError)) throw new Error(`expected a SlipwayError, got ${String(err)}`);
  return err;
}

const files = {
  'root.Dockerfile': 'FROM scratch\n',
  'app.Dockerfile': 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY conf/app.yaml /etc/app.yaml\n',
  'conf/app.yaml': 'x',
};

/** The layout with the file app.Dockerfile copies missing. */
const withoutConf = {
  'root.Dockerfile': files['root.Dockerfile'],
  'app.Dockerfile': files['app.Dockerfile'],
};

const images = {
  root: { dockerfile: 'root.Dockerfile', repository: 'acme/root' },
  app: { dockerfile: 'app.Dockerfile', repository: 'acme/app', base: 'root' },
};

describe('verifyManifest', () => {
  it('passes a sound manifest and names the checks it ran', async () => {
    const loaded = await layout({ version: 1, templates: { t: gitTemplate() }, images }, files);
    const result = await verifyManifest(loaded);
    expect(result).toMatchObject({ templates: 1, images: 2, pins: 0, warnings: [] });
    expect(result.checks).toEqual(['schema', 'pinning contract', 'dockerfile preflight']);
  });

  it('reports contract and preflight problems together in one run', async () => {
    const loaded = await layout({ version: 1, templates: { t: gitTemplate('main') }, images }, withoutConf);
    const err = await failure(verifyManifest(loaded));
    expect(err.code).toBe('CONTRACT_VIOLATION');
    expect(err.details?.map((d) => d.at)).toEqual(['templates.t.ref', 'app.Dockerfile:3']);
    expect(err.message).toMatch(/templates\.t\.ref: template "t" ref "main" is not a full 40-hex commit/);
    expect(err.message).toMatch(
      /and preflight found 1 problem:\n {2}app\.Dockerfile:3: COPY source conf\/app\.yaml/,
    );
  });

  it('a contract failure alone keeps its code and message; a preflight failure alone keeps its own', async () => {
    const contractOnly = await layout({ version: 1, templates: { t: gitTemplate('main') }, images }, files);
    const c = await failure(verifyManifest(contractOnly));
    expect([c.code, c.details?.map((d) => d.at)]).toEqual(['CONTRACT_VIOLATION', ['templates.t.ref']]);
    expect(c.message).not.toMatch(/preflight/);

    const preflightOnly = await layout({ version: 1, images }, withoutConf);
    const p = await failure(verifyManifest(preflightOnly));
    expect([p.code, p.details?.map((d) => d.at)]).toEqual(['PREFLIGHT_FAILED', ['app.Dockerfile:3']]);
  });

  it('a base cycle is reported by the contract, not as a Dockerfile that ignores ${BASE_IMAGE}', async () => {
    const cyclic: ManifestInput = {
      version: 1,
      images: { root: { ...images.root, base: 'app' }, app: images.app },
    };
    const loaded = await layout(cyclic, files);
    const err = await failure(verifyManifest(loaded));
    expect(err.code).toBe('CONTRACT_VIOLATION');
    expect(err.details).toEqual([
      {
        at: 'images.app.base',
        message: 'images form a base cycle: app -> root -> app',
        hint: 'an image cannot be built FROM itself, directly or through other images',
      },
    ]);
    expect(err.message).not.toMatch(/BASE_IMAGE/);
  });
});
