// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text uses ${VAR} literally
import { describe, expect, it } from 'vitest';
import { LABELS } from '../core/labels.js';
import type { Plan, PlannedImage } from '../plan/types.js';
import { type BuildInputs, inputDigest, localTagFor, selectImages } from './build.js';

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

  it('without bases (a piecewise build) keeps only the requested images', () => {
    expect(selectImages(plan, ['agent'], false).map((i) => i.name)).toEqual(['agent']);
    expect(selectImages(plan, [], false).map((i) => i.name)).toEqual(['platform', 'tools', 'agent']);
  });
});
