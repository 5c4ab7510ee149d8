import { describe, expect, it } from 'vitest';
import { planMatrix } from './matrix.js';
import type { Plan, PlannedImage } from './types.js';

const image = (name: string, base: string | null): PlannedImage => ({
  name,
  repository: `r/${name}`,
  dockerfile: `Dockerfile.${name}`,
  context: '.',
  contextDigest: `sha256:${'0'.repeat(64)}`,
  base,
  buildArgs: {},
  target: null,
  labels: {},
  templates: [],
  immutableTags: ['dev-x'],
  movingTags: ['dev-latest'],
  smoke: null,
});

const plan = (images: PlannedImage[]): Plan => ({
  version: 1,
  env: 'dev',
  sha: 'a'.repeat(40),
  source: null,
  images,
  pins: [],
});

describe('planMatrix', () => {
  it('groups the images by dependency level, in plan order', () => {
    const m = planMatrix(
      plan([
        image('platform', null),
        image('tools', null),
        image('agent', 'platform'),
        image('agent-plus', 'agent'),
        image('tools-agent', 'tools'),
      ]),
    );
    expect(m).toEqual({
      levels: [
        {
          level: 0,
          include: [
            { image: 'platform', level: 0 },
            { image: 'tools', level: 0 },
          ],
        },
        {
          level: 1,
          include: [
            { image: 'agent', level: 1 },
            { image: 'tools-agent', level: 1 },
          ],
        },
        { level: 2, include: [{ image: 'agent-plus', level: 2 }] },
      ],
      include: [
        { image: 'platform', level: 0 },
        { image: 'tools', level: 0 },
        { image: 'agent', level: 1 },
        { image: 'agent-plus', level: 2 },
        { image: 'tools-agent', level: 1 },
      ],
    });
  });

  it('puts an image whose base the plan does not hold at level 0, and an empty plan at no level', () => {
    expect(planMatrix(plan([image('agent', 'platform')])).levels).toEqual([
      { level: 0, include: [{ image: 'agent', level: 0 }] },
    ]);
    expect(planMatrix(plan([]))).toEqual({ levels: [], include: [] });
  });
});
