// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally
import { describe, expect, it } from 'vitest';
import { LABELS } from '../core/labels.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { type BuildInputs, inputDigest, localTagFor, selectImages } from './build.js';
import { BuildLog } from './build-stream.js';

const inputs: BuildInputs = {
  dockerfile: 'FROM ${BASE_IMAGE}\n',
  contextDigest: `sha256:${'c'.repeat(64)}`,
  buildArgs: { A: '1', B: '2' },
  target: null,
  baseId: `sha256:${'b'.repeat(64)}`,
  labels: { [LABELS.image]: 'agent' },
};

describe('input digest', () => {
  it('ignores key order and the created label, and changes with the base, the Dockerfile or a label', () => {
    const d = inputDigest(inputs);
    expect(d).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(
      inputDigest({
        ...inputs,
        buildArgs: { B: '2', A: '1' },
        labels: { ...inputs.labels, [LABELS.created]: 'now' },
      }),
    ).toBe(d);
    const changed = [
      { ...inputs, baseId: `sha256:${'e'.repeat(64)}` },
      { ...inputs, dockerfile: 'FROM ${BASE_IMAGE}\nRUN true\n' },
      { ...inputs, labels: { ...inputs.labels, [LABELS.revision]: 'x' } },
      { ...inputs, target: 'final' },
    ].map(inputDigest);
    expect(new Set([d, ...changed]).size).toBe(5);
    expect(localTagFor('molecule-ai/platform', d)).toBe(`molecule-ai/platform:slipway-${d.slice(7, 19)}`);
  });
});

describe('selectImages', () => {
  const image = (name: string, base: string | null) => ({ name, base }) as PlannedImage;
  const plan = {
    images: [image('platform', null), image('tools', null), image('agent', 'platform')],
  } as unknown as Plan;
  it('keeps the requested images and their bases in plan order; refuses unknown names', () => {
    expect(selectImages(plan, ['agent']).map((i) => i.name)).toEqual(['platform', 'agent']);
    expect(selectImages(plan).map((i) => i.name)).toEqual(['platform', 'tools', 'agent']);
    expect(() => selectImages(plan, ['nope'])).toThrow('image "nope" is not in the plan');
  });
});

describe('BuildLog', () => {
  it('tracks the step, splits chunked lines, keeps the first error and the image ID', () => {
    const lines: string[] = [];
    const log = new BuildLog((l) => lines.push(l));
    log.push({ stream: 'Step 1/2 : FROM x' });
    log.push({ stream: '\n ---> abc\nStep 2/2 : RUN make\n' });
    log.push({ stream: 'partial ' });
    log.push({ stream: 'line\n' });
    log.push({
      error: 'The command returned a non-zero code: 2',
      errorDetail: { message: 'returned 2', code: 2 },
    });
    log.push({ error: 'later' });
    log.end();
    expect({ step: log.step, error: log.error, id: log.imageId, lines }).toEqual({
      step: 'Step 2/2 : RUN make',
      error: 'returned 2',
      id: null,
      lines: ['Step 1/2 : FROM x', ' ---> abc', 'Step 2/2 : RUN make', 'partial line'],
    });
  });

  it('reads the ID from aux and BuildKit lines, and keeps only the last 20 lines', () => {
    const log = new BuildLog();
    for (let i = 0; i < 30; i++) log.push({ stream: `line ${i}\n` });
    log.push({ stream: '[sha256:3f2a5] [2/3] COPY a /a\n' });
    log.push({ aux: { ID: `sha256:${'f'.repeat(64)}` } });
    expect([log.tail.length, log.tail[0], log.step, log.imageId]).toEqual([
      20,
      'line 11',
      '[2/3] COPY a /a',
      `sha256:${'f'.repeat(64)}`,
    ]);
  });
});
