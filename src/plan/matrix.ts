import type { Plan } from './types.js';

/** One image in an Actions matrix: the job runs `slipway push <image> --plan FILE`. */
export interface MatrixEntry {
  readonly image: string;
  /** Its dependency level: 0 for images without a base, else one more than its base's. */
  readonly level: number;
}

/** The images one level of the plan publishes, in parallel (one runner per image). */
export interface MatrixLevel {
  readonly level: number;
  /** The `strategy.matrix.include` of the level's job. */
  readonly include: readonly MatrixEntry[];
}

/**
 * A plan's images by dependency level, in the shape an Actions matrix takes through `fromJSON`:
 * the jobs of level N run once every job of level N-1 pushed its image, so each dependent
 * resolves its base by the digest pushed for the plan.
 */
export interface PlanMatrix {
  readonly levels: readonly MatrixLevel[];
  /** Every image with its level (one matrix over the whole plan). */
  readonly include: readonly MatrixEntry[];
}

/** The plan's dependency levels (pure). A base outside the plan counts as already published. */
export function planMatrix(plan: Plan): PlanMatrix {
  const levelOf = new Map<string, number>();
  // Plans list bases first, so each base's level is known when its dependents come.
  for (const image of plan.images) {
    const base = image.base === null ? undefined : levelOf.get(image.base);
    levelOf.set(image.name, base === undefined ? 0 : base + 1);
  }
  const include = plan.images.map((i) => ({ image: i.name, level: levelOf.get(i.name) ?? 0 }));
  const depth = include.reduce((max, e) => Math.max(max, e.level + 1), 0);
  const levels = Array.from({ length: depth }, (_, level) => ({
    level,
    include: include.filter((e) => e.level === level),
  }));
  return { levels, include };
}
