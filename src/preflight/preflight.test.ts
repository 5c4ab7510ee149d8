// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally
import { describe, expect, it } from 'vitest';
import { gitTemplate, layout, staged } from '../../test/build/layout.js';
import { SlipwayError } from '../core/errors.js';
import type { ManifestInput } from '../manifest/schema.js';
import { preflight } from './preflight.js';

const AGENT_DOCKERFILE = `# the production agent image
ARG BASE_IMAGE
FROM \${BASE_IMAGE}
COPY ${staged('platform-agent')} /opt/platform-agent/template
COPY dockerfiles/identity-fallback.sh /usr/local/bin/identity-fallback.sh
`;

const files = {
  'dockerfiles/Dockerfile.platform': 'ARG ROOT_IMAGE=debian:bookworm-slim\nFROM ${ROOT_IMAGE}\nRUN true\n',
  'dockerfiles/Dockerfile.platform-agent': AGENT_DOCKERFILE,
  'dockerfiles/identity-fallback.sh': '#!/bin/sh\nexec "$@"\n',
};

const manifest = (over: Partial<ManifestInput> = {}, agent: Record<string, unknown> = {}): ManifestInput => ({
  version: 1,
  templates: { 'platform-agent': gitTemplate() },
  images: {
    platform: { dockerfile: 'dockerfiles/Dockerfile.platform', repository: 'molecule-ai/platform' },
    'platform-agent': {
      dockerfile: 'dockerfiles/Dockerfile.platform-agent',
      repository: 'molecule-ai/molecule-platform-agent',
      base: 'platform',
      templates: ['platform-agent'],
      ...agent,
    },
  },
  ...over,
});

async function failure(p: Promise<unknown>): Promise<SlipwayError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof SlipwayError)) throw new Error(`expected a SlipwayError, got ${String(err)}`);
  return err;
}

describe('preflight', () => {
  it('passes the reference layout, crediting the staged template to the manifest (staged or not)', async () => {
    const loaded = await layout(manifest(), files);
    expect(await preflight(loaded)).toEqual({
      images: [
        { name: 'platform', dockerfile: 'dockerfiles/Dockerfile.platform', sources: 0, consumes: [] },
        {
          name: 'platform-agent',
          dockerfile: 'dockerfiles/Dockerfile.platform-agent',
          sources: 2,
          consumes: ['platform-agent'],
        },
      ],
      warnings: [],
    });
  });

  it('the production failure: no manifest entry stages the COPY source -> names the line, the path and the entry to add', async () => {
    const loaded = await layout(manifest({ templates: {} }, { templates: [] }), files);
    const err = await failure(preflight(loaded));
    expect(err.code).toBe('PREFLIGHT_FAILED');
    expect(err.details).toEqual([
      {
        at: 'dockerfiles/Dockerfile.platform-agent:4',
        message:
          'COPY source .tenant-bundle-deps/workspace-configs-templates/platform-agent is not in the build context and no manifest template stages it',
        hint: 'add templates.platform-agent and list it in images.platform-agent.templates',
      },
    ]);
    expect(err.message).toContain(
      'dockerfiles/Dockerfile.platform-agent:4: COPY source .tenant-bundle-deps/workspace-configs-templates/platform-agent is not in the build context and no manifest template stages it (hint: add templates.platform-agent and list it in images.platform-agent.templates)',
    );
  });

  it('a stale staged directory without a manifest entry is still refused', async () => {
    const loaded = await layout(manifest({ templates: {} }, { templates: [] }), {
      ...files,
      [`${staged('platform-agent')}/config.yaml`]: 'name: old\n',
    });
    const err = await failure(preflight(loaded));
    expect(err.details).toEqual([
      {
        at: 'dockerfiles/Dockerfile.platform-agent:4',
        message:
          'COPY source .tenant-bundle-deps/workspace-configs-templates/platform-agent is only a leftover of an earlier staging: no manifest template stages it',
        hint: 'add templates.platform-agent and list it in images.platform-agent.templates',
      },
    ]);
  });

  it('a template that exists but the image does not list', async () => {
    const loaded = await layout(manifest({}, { templates: [] }), files);
    const err = await failure(preflight(loaded));
    expect(err.details).toEqual([
      {
        at: 'dockerfiles/Dockerfile.platform-agent:4',
        message:
          'COPY source .tenant-bundle-deps/workspace-configs-templates/platform-agent is staged by templates.platform-agent, but images.platform-agent.templates does not list it',
        hint: 'add "platform-agent" to images.platform-agent.templates',
      },
    ]);
  });

  it('substitutes ARG defaults, manifest buildArgs and overrides in COPY sources', async () => {
    const dockerfile = 'FROM scratch\nARG CONF=conf\nCOPY ${CONF}/app.yaml /etc/app.yaml\n';
    const m: ManifestInput = {
      version: 1,
      images: { app: { dockerfile: 'Dockerfile', repository: 'acme/app' } },
    };
    const missing = await layout(m, { Dockerfile: dockerfile, 'other/app.yaml': 'x' });
    expect((await failure(preflight(missing))).details).toEqual([
      {
        at: 'Dockerfile:3',
        message: 'COPY source ${CONF}/app.yaml (= conf/app.yaml) does not exist in the build context .',
        hint: 'sources are relative to the build context (not to the Dockerfile); fix the path or add the file',
      },
    ]);
    expect((await preflight(missing, { buildArgs: { CONF: 'other' } })).images[0]?.sources).toBe(1);
    const viaManifest = await layout(
      {
        ...m,
        images: { app: { dockerfile: 'Dockerfile', repository: 'acme/app', buildArgs: { CONF: 'other' } } },
      },
      { Dockerfile: dockerfile, 'other/app.yaml': 'x' },
    );
    expect((await preflight(viaManifest)).warnings).toEqual([]);
  });

  it('a COPY source excluded by .dockerignore is missing, and says so', async () => {
    const loaded = await layout(
      { version: 1, images: { app: { dockerfile: 'Dockerfile', repository: 'acme/app' } } },
      {
        Dockerfile: 'FROM scratch\nCOPY secrets/key.pem /k\nCOPY ["conf/a b.yaml", "/c"]\n',
        '.dockerignore': '# keep keys out\nsecrets\n',
        'secrets/key.pem': 'k',
        'conf/a b.yaml': 'x',
      },
    );
    expect((await failure(preflight(loaded))).details).toEqual([
      {
        at: 'Dockerfile:2',
        message: 'COPY source secrets/key.pem is excluded from the build context by .dockerignore',
        hint: 'remove the pattern that matches it, or add the exception "!secrets/key.pem"',
      },
    ]);
  });

  it('ignores multi-stage COPY --from, ADD URLs and heredocs; globs need one match', async () => {
    const loaded = await layout(
      { version: 1, images: { app: { dockerfile: 'Dockerfile', repository: 'acme/app', target: 'final' } } },
      {
        Dockerfile: [
          'FROM scratch AS builder',
          'COPY src/*.sh /src/',
          'FROM scratch AS final',
          'COPY --from=builder /out /out',
          'COPY --chown=1000:1000 --from=builder /bin/app /app',
          'ADD https://example.com/tool.tar.gz /tmp/',
          'COPY *.py /py/',
        ].join('\n'),
        'src/run.sh': 'echo',
      },
    );
    expect((await failure(preflight(loaded))).details).toEqual([
      {
        at: 'Dockerfile:7',
        message: 'COPY source *.py does not exist in the build context .',
        hint: 'sources are relative to the build context (not to the Dockerfile); fix the path or add the file',
      },
    ]);
  });

  it('BASE_IMAGE rules: declared before FROM when the image has a base; refused without a base; a base must be used', async () => {
    const m: ManifestInput = {
      version: 1,
      images: {
        base: { dockerfile: 'base.Dockerfile', repository: 'acme/base' },
        late: { dockerfile: 'late.Dockerfile', repository: 'acme/late', base: 'base' },
        orphan: { dockerfile: 'orphan.Dockerfile', repository: 'acme/orphan' },
        ignores: { dockerfile: 'ignores.Dockerfile', repository: 'acme/ignores', base: 'base' },
      },
    };
    const loaded = await layout(m, {
      'base.Dockerfile': 'FROM scratch\n',
      'late.Dockerfile': 'FROM ${BASE_IMAGE}\nARG BASE_IMAGE\n',
      'orphan.Dockerfile': 'ARG BASE_IMAGE=acme/base:latest\nFROM $BASE_IMAGE\n',
      'ignores.Dockerfile': '# comment\nFROM scratch\n',
    });
    expect((await failure(preflight(loaded))).details).toEqual([
      {
        at: 'ignores.Dockerfile:2',
        message: 'images.ignores has base "base", but no FROM uses ${BASE_IMAGE}: the base would be ignored',
        hint: 'declare `ARG BASE_IMAGE` before the first FROM and write `FROM ${BASE_IMAGE}`',
      },
      {
        at: 'late.Dockerfile:1',
        message:
          'FROM ${BASE_IMAGE} uses BASE_IMAGE, but no ARG BASE_IMAGE is declared before the first FROM',
        hint: 'add `ARG BASE_IMAGE` at the top of the Dockerfile, before any FROM',
      },
      {
        at: 'orphan.Dockerfile:2',
        message: 'FROM $BASE_IMAGE uses BASE_IMAGE, but images.orphan has no "base"',
        hint: 'set images.orphan.base to the manifest image this one is built on',
      },
    ]);
  });

  it('a missing Dockerfile names the manifest path', async () => {
    const loaded = await layout(
      { version: 1, images: { app: { dockerfile: 'docker/Dockerfile.app', repository: 'acme/app' } } },
      {},
    );
    expect((await failure(preflight(loaded))).details).toEqual([
      {
        at: 'images.app.dockerfile',
        message: 'Dockerfile docker/Dockerfile.app does not exist',
        hint: 'fix the path (relative to the manifest directory) or add the Dockerfile',
      },
    ]);
  });

  it('warns when an image lists a template no COPY reads', async () => {
    const loaded = await layout(manifest(), {
      ...files,
      'dockerfiles/Dockerfile.platform-agent': 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n',
    });
    expect((await preflight(loaded)).warnings).toEqual([
      {
        at: 'images.platform-agent.templates',
        message:
          'image platform-agent lists template "platform-agent", but no COPY/ADD in dockerfiles/Dockerfile.platform-agent reads .tenant-bundle-deps/workspace-configs-templates/platform-agent',
        hint: 'copy the staged template into the image, or remove it from the list',
      },
    ]);
  });
});
