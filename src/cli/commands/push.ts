import type { Command } from 'commander';
import { buildImages, selectImages } from '../../build/build.js';
import { preflight } from '../../build/preflight.js';
import type { Plan } from '../../plan/types.js';
import { openRegistry } from '../../publish/open.js';
import { prepareRepositories, pushImages } from '../../publish/push.js';
import type { Cli } from '../cli.js';
import { timeoutsOf } from '../timeouts.js';
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
  plan?: string;
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
    .option('--plan <file>', 'execute a plan made earlier with `slipway plan --json`')
    .action(async (images: string[], opts: PushCommandOptions) => {
      const loaded = await cli.loadManifest();
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
      // The registry first: bad credentials or a missing repository fail in seconds, not after a build.
      const registry = await openRegistry(url, {
        env: cli.io.env,
        redactor: cli.redactor,
        timeouts: timeoutsOf(cli),
      });
      const toPush = { ...plan, images: selectImages(plan, images) };
      const signal = cli.io.signal ? { signal: cli.io.signal } : {};
      const pushOptions = {
        createRepos: opts.createRepos,
        repositorySettings: loaded.manifest.publish.ecr,
        sink: cli.sink,
        redactor: cli.redactor,
        timeouts: timeoutsOf(cli),
        ...signal,
      };
      await prepareRepositories(toPush, registry, pushOptions);
      const built = await buildImages(loaded, plan, { only: images, sink: cli.sink, ...signal });
      const result = await pushImages(toPush, built, registry, pushOptions);
      cli.print(
        { ok: true, env: plan.env, sha: plan.sha, ...result },
        result.images.flatMap((i) => i.tags.map((t) => `${i.repository}:${t}@${i.digest}`)),
      );
    });
}
