import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SlipwayError } from '../../core/errors.js';
import type { LoadedManifest } from '../../manifest/load.js';
import type { Plan } from '../../plan/types.js';
import type { StagingReceipt } from '../../stage/receipt.js';
import type { Cli } from '../cli.js';

/** Options shared by `plan` and `build`. */
export interface PlanCommandOptions {
  env: string;
  sha?: string;
  buildArg: string[];
}

/** Commander collector for a repeatable `--build-arg K=V`. */
export function collectBuildArg(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses `K=V` pairs; a pair without `=` is a usage error. */
export function parseBuildArgs(cli: Cli, pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      cli.usage(`--build-arg "${pair}" is not KEY=VALUE`, 'e.g. --build-arg ROOT_IMAGE=debian:bookworm-slim');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The staging receipt, or an error telling the user to stage first. */
export async function requireReceipt(loaded: LoadedManifest): Promise<StagingReceipt> {
  const { readReceipt } = await import('../../stage/stage.js');
  const receipt = await readReceipt(loaded);
  if (!receipt) {
    throw new SlipwayError(
      'PLAN_INVALID',
      `nothing is staged: ${loaded.manifest.stagingDir}/staged.lock.json is missing`,
      {
        resource: loaded.manifest.stagingDir,
        hint: 'run `slipway stage` first',
      },
    );
  }
  return receipt;
}

/** Makes the plan the way `plan` and `build` do: receipt, --sha (default git HEAD), --env, --build-arg. */
export async function planFromOptions(
  cli: Cli,
  loaded: LoadedManifest,
  images: readonly string[],
  opts: PlanCommandOptions,
): Promise<Plan> {
  const buildArgs = parseBuildArgs(cli, opts.buildArg);
  const [{ makePlan }, { gitHead, gitSource }] = await Promise.all([
    import('../../plan/plan.js'),
    import('../../plan/revision.js'),
  ]);
  const receipt = await requireReceipt(loaded);
  const sha = opts.sha ?? (await gitHead(loaded.dir));
  return makePlan(loaded, {
    env: opts.env,
    sha,
    receipt,
    buildArgs,
    images,
    source: await gitSource(loaded.dir),
  });
}

/** Reads and validates a plan made earlier (`slipway plan --json > FILE`), without preflight. */
export async function readPlanDocument(cli: Cli, planFile: string): Promise<Plan> {
  const file = cli.resolve(planFile);
  const { parsePlan } = await import('../../plan/plan.js');
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new SlipwayError('USAGE', `cannot read plan ${planFile} (${err.code})`, { resource: file });
  });
  return parsePlan(text, planFile);
}

/** Reads a plan made earlier (`slipway plan --json > FILE`) and preflights each image with the plan's own args. */
export async function readPlanFile(cli: Cli, loaded: LoadedManifest, planFile: string): Promise<Plan> {
  const plan = await readPlanDocument(cli, planFile);
  const { preflight } = await import('../../preflight/preflight.js');
  // The plan's args already hold the run's overrides: check each image against its own.
  for (const image of plan.images) {
    await preflight(loaded, { images: [image.name], buildArgs: image.buildArgs, sink: cli.sink });
  }
  return plan;
}

/** Text lines describing a plan. */
export function describePlan(plan: Plan): string[] {
  const lines = [`plan for ${plan.env} at ${plan.sha}`];
  for (const image of plan.images) {
    lines.push(
      `  ${image.name} (${image.repository}) from ${image.dockerfile}${image.base ? `, FROM ${image.base}` : ''}`,
      `    tags: ${[...image.immutableTags, ...image.movingTags].join(', ')}`,
    );
    for (const t of image.templates) lines.push(`    template ${t.name} @ ${t.ref ?? '(path)'} ${t.digest}`);
  }
  for (const pin of plan.pins) lines.push(`  pin ${pin.runtime} -> ${pin.image}:${pin.tag}`);
  return lines;
}

/** `slipway plan [IMAGE...]`: prints what a run would build, tag and pin. */
export function registerPlan(program: Command, cli: Cli): void {
  program
    .command('plan')
    .description(
      'print the plan: images in build order, tags, labels, templates, pin moves (--json: the plan document)',
    )
    .argument('[images...]', 'plan only these images (and their bases)')
    .option('--env <env>', 'environment name rendered into tags', 'dev')
    .option('--sha <sha>', 'source revision (default: git rev-parse HEAD in the manifest directory)')
    .option('--build-arg <key=value>', 'build arg for every image (repeatable)', collectBuildArg, [])
    .option(
      '--matrix',
      'add `matrix` to the plan: its images by dependency level, as an Actions matrix takes them (fromJSON)',
      false,
    )
    .action(async (images: string[], opts: PlanCommandOptions & { matrix: boolean }) => {
      const loaded = await cli.loadManifest();
      const plan = await planFromOptions(cli, loaded, images, opts);
      if (!opts.matrix) {
        cli.print(plan, describePlan(plan));
        return;
      }
      const { planMatrix } = await import('../../plan/matrix.js');
      const matrix = planMatrix(plan);
      cli.print({ ...plan, matrix }, [
        ...describePlan(plan),
        ...matrix.levels.map((l) => `  level ${l.level}: ${l.include.map((e) => e.image).join(', ')}`),
      ]);
    });
}
