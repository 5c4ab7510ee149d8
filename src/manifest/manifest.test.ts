import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SlipwayError } from '../core/errors.js';
import { checkContract } from './contract.js';
import { baseGraphBroken, imageOrder } from './graph.js';
import { manifestJsonSchema } from './json-schema.js';
import { parseManifest } from './load.js';
import type { ManifestInput } from './schema.js';

const SHA = 'a'.repeat(40);

/** Manifest JSON that the cases mutate at arbitrary depth, valid or not. */
// biome-ignore lint/suspicious/noExplicitAny: the cases build deliberately malformed JSON
type Json = any;

/** A valid manifest; each case below breaks one thing in a copy. */
function good(): ManifestInput & Record<string, unknown> {
  return {
    version: 1,
    templates: {
      'platform-agent': {
        source: { git: 'https://git.example.com/org/templates.git', subdir: 'platform-agent' },
        ref: SHA,
        required: ['config.yaml'],
      },
    },
    images: {
      platform: { dockerfile: 'dockerfiles/Dockerfile.platform', repository: 'molecule-ai/platform' },
      'platform-agent': {
        dockerfile: 'dockerfiles/Dockerfile.platform-agent',
        repository: 'molecule-ai/molecule-platform-agent',
        base: 'platform',
        templates: ['platform-agent'],
      },
    },
    pins: { 'platform-agent': { image: 'platform-agent' } },
  };
}

/** A case's mutation of the good manifest, returning it. */
function patch(change: (m: Json) => void): (m: Json) => unknown {
  return (m) => {
    change(m);
    return m;
  };
}

function parseError(m: unknown): SlipwayError {
  try {
    parseManifest(JSON.stringify(m, null, 2), 'manifest.json');
  } catch (err) {
    if (err instanceof SlipwayError) return err;
    throw err;
  }
  throw new Error('expected the manifest to be refused');
}

function contractErrors(m: unknown): Array<{ at: string; message: string }> {
  const manifest = parseManifest(JSON.stringify(m), 'manifest.json');
  return checkContract(manifest).errors.map(({ at, message }) => ({ at, message }));
}

describe('manifest schema', () => {
  it('accepts the good manifest and applies defaults', () => {
    const m = parseManifest(JSON.stringify(good()), 'manifest.json');
    expect(m.stagingDir).toBe('.tenant-bundle-deps/workspace-configs-templates');
    expect(m.tags).toEqual({
      immutable: ['{env}-{sha}'],
      moving: ['{env}-latest'],
      sha: 'full',
      shortLength: 12,
    });
    expect(m.images.platform).toEqual({
      dockerfile: 'dockerfiles/Dockerfile.platform',
      context: '.',
      repository: 'molecule-ai/platform',
      templates: [],
      buildArgs: {},
      labels: {},
    });
    expect(checkContract(m)).toEqual({ errors: [], warnings: [] });
  });

  it('accepts the repository root manifest.json', () => {
    const text = readFileSync(new URL('../../manifest.json', import.meta.url), 'utf8');
    const m = parseManifest(text, 'manifest.json');
    expect(checkContract(m, { strict: true }).errors).toEqual([]);
  });

  // Each malformed manifest with the JSON path and message the user sees.
  const schemaCases: Array<[string, (m: Json) => unknown, string, RegExp]> = [
    ['unknown top-level key', (m) => ({ ...m, tmplates: {} }), '(root)', /unknown key "tmplates"/],
    [
      'typo inside a template',
      patch((m) => {
        m.templates['platform-agent'].requierd = ['x'];
      }),
      'templates.platform-agent',
      /unknown key "requierd"/,
    ],
    ['missing version', (m) => ({ ...m, version: undefined }), 'version', /expected 1/i],
    [
      'uppercase image name',
      patch((m) => {
        m.images.Platform = m.images.platform;
      }),
      'images.Platform',
      /image names are lowercase/,
    ],
    [
      'repository with a registry and tag',
      patch((m) => {
        m.images.platform.repository = 'ECR.example.com/Platform:latest';
      }),
      'images.platform.repository',
      /repository is a lowercase path/,
    ],
    [
      'absolute dockerfile path',
      patch((m) => {
        m.images.platform.dockerfile = '/etc/Dockerfile';
      }),
      'images.platform.dockerfile',
      /must be relative to the manifest/,
    ],
    [
      'source that is none of the kinds',
      patch((m) => {
        m.templates['platform-agent'].source = { svn: 'x' };
      }),
      'templates.platform-agent.source',
      /Invalid input/,
    ],
    [
      'github source that is not owner/repo',
      patch((m) => {
        m.templates['platform-agent'].source = { github: 'just-a-name' };
      }),
      'templates.platform-agent.source.github',
      /github source must be owner\/repo/,
    ],
    [
      'immutable tag without {sha}',
      (m) => ({ ...m, tags: { immutable: ['{env}-latest'] } }),
      'tags.immutable[0]',
      /must contain \{sha\}/,
    ],
    [
      'unknown tag placeholder',
      (m) => ({ ...m, tags: { moving: ['{branch}'] } }),
      'tags.moving[0]',
      /placeholders \{env\}, \{sha\}/,
    ],
    [
      'unknown smoke assertion kind',
      patch((m) => {
        m.images['platform-agent'].smoke = {
          ready: { log: 'ready' },
          assertions: [{ kind: 'exists', path: '/x' }],
        };
      }),
      'images.platform-agent.smoke.assertions[0].kind',
      /Expected 'path' \| 'template' \| 'absent' \| 'exec'/,
    ],
    [
      'smoke path that is not absolute',
      patch((m) => {
        m.images['platform-agent'].smoke = {
          ready: { log: 'ready' },
          assertions: [{ kind: 'path', path: 'configs/config.yaml' }],
        };
      }),
      'images.platform-agent.smoke.assertions[0].path',
      /start with "\/"/,
    ],
    [
      'registry URL without a scheme',
      (m) => ({ ...m, publish: { registry: '123.dkr.ecr.us-east-1.amazonaws.com' } }),
      'publish.registry',
      /ecr:\/\/.*oci:\/\//,
    ],
  ];

  it.each(schemaCases)('refuses %s', (_name, mutate, at, message) => {
    const err = parseError(mutate(good()));
    expect(err.code).toBe('MANIFEST_INVALID');
    const detail = err.details.find((d) => d.at === at);
    expect(detail, `details: ${JSON.stringify(err.details)}`).toBeDefined();
    expect(detail?.message).toMatch(message);
    expect(err.message).toContain(`manifest.json: `);
    expect(err.message).toContain(at);
  });

  it('refuses invalid JSON with the line and column', () => {
    try {
      parseManifest('{\n  "version": 1,\n  "images": {,}\n}', 'manifest.json');
      throw new Error('expected a parse error');
    } catch (err) {
      expect(err).toBeInstanceOf(SlipwayError);
      expect((err as SlipwayError).code).toBe('MANIFEST_PARSE');
      expect((err as SlipwayError).message).toMatch(/^manifest\.json:3:\d+: not valid JSON/);
    }
  });

  it('refuses duplicate names, which JSON.parse would silently merge', () => {
    const text = `{
  "version": 1,
  "templates": {
    "t": { "source": { "path": "a" } },
    "t": { "source": { "path": "b" } }
  },
  "images": {}
}`;
    try {
      parseManifest(text, 'manifest.json');
      throw new Error('expected a duplicate-key error');
    } catch (err) {
      expect((err as SlipwayError).code).toBe('MANIFEST_INVALID');
      expect((err as SlipwayError).details).toEqual([
        { at: 'manifest.json:5:5', message: 'duplicate key: names must be unique' },
      ]);
    }
  });

  it('finds a duplicate key at any depth, and none in strings that look like keys', () => {
    const nested = `{ "version": 1, "templates": { "t": { "source": { "path": "a", "path": "b" } } }, "images": {} }`;
    expect(() => parseManifest(nested, 'manifest.json')).toThrow(/duplicate key at 1:64/);
    // Quotes, escapes and colons inside values and keys are not keys of their own.
    const tricky = `{ "version": 1, "templates": { "t\\":x": { "source": { "path": "a\\": \\"b\\":" }, "description": "\\":" } }, "images": {} }`;
    expect(Object.keys(JSON.parse(tricky).templates)).toEqual(['t":x']);
    expect(() => parseManifest(tricky, 'manifest.json')).not.toThrow(/duplicate/);
  });
});

describe('pinning contract', () => {
  const contractCases: Array<[string, (m: Json) => unknown, { at: string; message: RegExp }]> = [
    [
      'a branch as ref',
      patch((m) => {
        m.templates['platform-agent'].ref = 'main';
      }),
      {
        at: 'templates.platform-agent.ref',
        message: /ref "main" is not a full 40-hex commit: it is a branch/,
      },
    ],
    [
      'a short SHA as ref',
      patch((m) => {
        m.templates['platform-agent'].ref = 'abc1234';
      }),
      {
        at: 'templates.platform-agent.ref',
        message: /"abc1234" is not a full 40-hex commit: it is a short SHA/,
      },
    ],
    [
      'a tag as ref',
      patch((m) => {
        m.templates['platform-agent'].ref = 'v1.2.0';
      }),
      { at: 'templates.platform-agent.ref', message: /it is a tag/ },
    ],
    [
      'uppercase hex ref',
      patch((m) => {
        m.templates['platform-agent'].ref = 'A'.repeat(40);
      }),
      { at: 'templates.platform-agent.ref', message: /uppercase hex/ },
    ],
    [
      'a git source without ref',
      patch((m) => {
        delete m.templates['platform-agent'].ref;
      }),
      { at: 'templates.platform-agent.ref', message: /has no "ref"/ },
    ],
    [
      'an image consuming an undefined template (the production failure)',
      patch((m) => {
        delete m.templates['platform-agent'];
      }),
      {
        at: 'images.platform-agent.templates[0]',
        message: /consumes template "platform-agent", which the manifest does not define/,
      },
    ],
    [
      'a base that does not exist',
      patch((m) => {
        m.images['platform-agent'].base = 'platfrom';
      }),
      { at: 'images.platform-agent.base', message: /base "platfrom", which the manifest does not define/ },
    ],
    [
      'a base cycle',
      patch((m) => {
        m.images.platform.base = 'platform-agent';
      }),
      { at: 'images.platform.base', message: /base cycle: platform -> platform-agent -> platform/ },
    ],
    [
      'two images pushing to one repository',
      patch((m) => {
        m.images.platform.repository = 'molecule-ai/molecule-platform-agent';
      }),
      {
        at: 'images.platform-agent.repository',
        message: /both push to repository "molecule-ai\/molecule-platform-agent"/,
      },
    ],
    [
      'a pin naming a runtime instead of an image',
      patch((m) => {
        m.pins['platform-agent'].image = 'claude-code';
      }),
      {
        at: 'pins.platform-agent.image',
        message: /pinned to image "claude-code", which the manifest does not define/,
      },
    ],
    [
      'smoke comparing with a template the image does not consume',
      patch((m) => {
        m.images.platform.smoke = {
          ready: { log: 'x' },
          assertions: [{ kind: 'template', path: '/configs', template: 'platform-agent' }],
        };
      }),
      { at: 'images.platform.smoke.assertions[0].template', message: /does not consume/ },
    ],
  ];

  it.each(contractCases)('refuses %s', (_name, mutate, expected) => {
    const errors = contractErrors(mutate(good()));
    expect(errors).toHaveLength(1);
    expect(errors[0]?.at).toBe(expected.at);
    expect(errors[0]?.message).toMatch(expected.message);
  });

  it('warns about a local path source, and refuses it when strict', () => {
    const m = good() as Json;
    m.templates['platform-agent'] = { source: { path: 'templates/platform-agent' } };
    const manifest = parseManifest(JSON.stringify(m), 'manifest.json');
    const loose = checkContract(manifest);
    expect(loose.errors).toEqual([]);
    expect(loose.warnings.map((w) => w.at)).toEqual(['templates.platform-agent.source']);
    expect(checkContract(manifest, { strict: true }).errors.map((e) => e.at)).toEqual([
      'templates.platform-agent.source',
    ]);
  });
});

describe('image order', () => {
  it('puts bases first and pulls in the bases of requested images', () => {
    const m = parseManifest(JSON.stringify(good()), 'manifest.json');
    expect(imageOrder(m)).toEqual(['platform', 'platform-agent']);
    expect(imageOrder(m, ['platform-agent'])).toEqual(['platform', 'platform-agent']);
    expect(imageOrder(m, ['platform'])).toEqual(['platform']);
  });

  it('names an unknown image and lists the known ones', () => {
    const m = parseManifest(JSON.stringify(good()), 'manifest.json');
    expect(() => imageOrder(m, ['agent'])).toThrow(/no image named "agent".*/);
    try {
      imageOrder(m, ['agent']);
    } catch (err) {
      expect((err as SlipwayError).hint).toBe('known images: platform, platform-agent');
    }
  });
});

describe('base graph', () => {
  it('is broken by a missing base, a self base or a cycle, and sound otherwise', () => {
    const withBase = (name: string, base: string) =>
      parseManifest(JSON.stringify(patch((m) => (m.images[name].base = base))(good())), 'manifest.json');
    expect(baseGraphBroken(parseManifest(JSON.stringify(good()), 'manifest.json'))).toBe(false);
    expect(baseGraphBroken(withBase('platform-agent', 'nope'))).toBe(true);
    expect(baseGraphBroken(withBase('platform', 'platform'))).toBe(true);
    expect(baseGraphBroken(withBase('platform', 'platform-agent'))).toBe(true);
  });
});

describe('JSON Schema', () => {
  it('schema/manifest.schema.json is up to date (run npm run schema)', () => {
    const onDisk = JSON.parse(
      readFileSync(new URL('../../schema/manifest.schema.json', import.meta.url), 'utf8'),
    );
    expect(onDisk).toEqual(manifestJsonSchema());
  });
});
