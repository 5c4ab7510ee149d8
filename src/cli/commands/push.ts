import type { Command } from 'commander';
import type { Plan } from '../../plan/types.js';
import type { Cli } from '../cli.js';
import {
  collectBuildArg,
  type PlanCommandOptions,
  parseBuildArgs,
  planFromOptions,
  readPlanFile,
} from './plan.js';

interface PushCommandOptions extends Omit<PlanCommandOptions, 'env'> {
  env?: string;
  registry?: string;
  createRepos: boolean;
  overwriteImmutable: boolean;
  plan?: string;
  buildkit: boolean;
}

/** `slipway push --registry URL --env ENV [--sha SHA] [--create-repos] [--plan FILE] [IMAGE...]`. */
export function registerPush(program: Command, cli: Cli): void {
  program
    .command('push')
    .description(
      'build what is not up to date, push every immutable tag and verify it, then move the moving tags (all or nothing)',
    )
    .argument('[images...]', 'push only these images (and their bases)')
    .option(
      '--registry <url>',
      'ecr://<account>.dkr.ecr.<region>.amazonaws.com or oci://host[:port][/prefix] (default: manifest publish.registry)',
    )
    .option('--env <env>', 'environment name rendered into tags (required without --plan)')
    .option('--sha <sha>', 'source revision (default: git rev-parse HEAD in the manifest directory)')
    .option('--build-arg <key=value>', 'build arg for every image (repeatable)', collectBuildArg, [])
    .option('--create-repos', 'create missing ECR repositories with the manifest publish.ecr settings', false)
    .option(
      '--overwrite-immutable',
      'overwrite an immutable tag that names an image built from other inputs (logged; refused without it)',
      false,
    )
    .option(
      '--plan <file>',
      'execute a plan made earlier with `slipway plan --json`; with IMAGE… only those are built and pushed, their bases pulled by the digest pushed for the plan',
    )
    .option(
      '--buildkit',
      'build with BuildKit: cached layers come from the registry without a pull (inline cache)',
      false,
    )
    .action(async (images: string[], opts: PushCommandOptions) => {
      const loaded = await cli.loadManifest();
      const [{ preflight }, { publishPlan }] = await Promise.all([
        import('../../preflight/preflight.js'),
        import('../../release/publish.js'),
      ]);
      const url = opts.registry ?? loaded.manifest.publish.registry;
      if (!url) {
        cli.usage(
          'no registry: pass --registry URL or set publish.registry in the manifest',
          'e.g. --registry oci://127.0.0.1:5000/team',
        );
      }
      let plan: Plan;
      if (opts.plan !== undefined) {
        if (opts.sha !== undefined || opts.env !== undefined || opts.buildArg.length > 0) {
          cli.usage('--plan fixes the env, sha and build args; drop --env, --sha and --build-arg');
        }
        plan = await readPlanFile(cli, loaded, opts.plan);
      } else {
        if (opts.env === undefined) cli.usage('push needs --env (or --plan FILE)', 'e.g. --env staging');
        await preflight(loaded, { buildArgs: parseBuildArgs(cli, opts.buildArg), sink: cli.sink });
        plan = await planFromOptions(cli, loaded, images, { ...opts, env: opts.env });
      }
      const piecewise = opts.plan !== undefined && images.length > 0;
      // One pipeline with release: the registry and credentials are checked before anything is built.
      const { pushed: result } = await cli.withPorts({ registry: url }, (ports) =>
        publishPlan(
          loaded,
          plan,
          {
            only: images,
            bases: piecewise ? 'pushed' : 'build',
            // Across runners the moving tags move once, in the finishing step (release --plan --finish).
            holdMovingTags: piecewise,
            buildkit: opts.buildkit,
            createRepos: opts.createRepos,
            overwriteImmutable: opts.overwriteImmutable,
            ...(cli.io.signal ? { signal: cli.io.signal } : {}),
          },
          ports,
        ),
      );
      cli.print(
        { ok: true, env: plan.env, sha: plan.sha, ...result },
        result.images.flatMap((i) => i.tags.map((t) => `${i.repository}:${t}@${i.digest}`)),
      );
    });
}
