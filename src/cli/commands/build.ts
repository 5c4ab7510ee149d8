import type { Command } from 'commander';
import type { BuildRegistry } from '../../build/resolve-base.js';
import type { EventSink } from '../../core/events.js';
import type { ImageEngine } from '../../engine/image-engine.js';
import type { Plan } from '../../plan/types.js';
import type { Clock } from '../../release/ports.js';
import type { Cli } from '../cli.js';
import {
  collectBuildArg,
  type PlanCommandOptions,
  parseBuildArgs,
  planFromOptions,
  readPlanFile,
} from './plan.js';

interface BuildCommandOptions extends PlanCommandOptions {
  cache: boolean;
  buildkit: boolean;
  plan?: string;
  registry?: string;
}

/** `slipway build [IMAGE...]`: preflight, plan (or --plan FILE), build with BASE_IMAGE chaining. */
export function registerBuild(program: Command, cli: Cli): void {
  program
    .command('build')
    .description(
      'preflight the Dockerfiles, then build every image (bases first, FROM the base built in this run)',
    )
    .argument('[images...]', 'build only these images (and their bases)')
    .option('--env <env>', 'environment name rendered into tags', 'dev')
    .option('--sha <sha>', 'source revision (default: git rev-parse HEAD in the manifest directory)')
    .option('--build-arg <key=value>', 'build arg for every image (repeatable)', collectBuildArg, [])
    .option('--no-cache', 'rebuild even when up to date, without the layer cache')
    .option('--buildkit', 'build with BuildKit instead of the classic builder', false)
    .option(
      '--plan <file>',
      'execute a plan made earlier with `slipway plan --json`; with IMAGE… the bases are pulled by the digest pushed for the plan',
    )
    .option(
      '--registry <url>',
      'the registry bases (with --plan IMAGE…) and cached layers come from (default with --plan: manifest publish.registry)',
    )
    .action(async (images: string[], opts: BuildCommandOptions) => {
      const loaded = await cli.loadManifest();
      const [{ buildImages }, { preflight }] = await Promise.all([
        import('../../build/build.js'),
        import('../../preflight/preflight.js'),
      ]);
      let plan: Plan;
      if (opts.plan !== undefined) {
        if (opts.sha !== undefined || opts.buildArg.length > 0) {
          cli.usage('--plan fixes the sha and build args; drop --sha and --build-arg');
        }
        plan = await readPlanFile(cli, loaded, opts.plan);
      } else {
        await preflight(loaded, { buildArgs: parseBuildArgs(cli, opts.buildArg), sink: cli.sink });
        plan = await planFromOptions(cli, loaded, images, opts);
      }
      // A piecewise build (--plan with named images) takes its bases from the registry.
      const piecewise = opts.plan !== undefined && images.length > 0;
      const registry = opts.registry ?? (piecewise ? loaded.manifest.publish.registry : undefined);
      if (piecewise && !registry) {
        cli.usage(
          'building IMAGE… from a plan pulls their bases from the registry: pass --registry URL or set publish.registry',
        );
      }
      const run = (ports: { engine: ImageEngine; sink: EventSink; clock: Clock }, reg?: BuildRegistry) =>
        buildImages(loaded, plan, {
          engine: ports.engine,
          only: images,
          bases: piecewise ? 'pushed' : 'build',
          ...(reg ? { registry: reg } : {}),
          redact: (text) => cli.redactor.redact(text),
          noCache: !opts.cache,
          buildkit: opts.buildkit,
          sink: ports.sink,
          now: ports.clock,
          ...(cli.io.signal ? { signal: cli.io.signal } : {}),
        });
      const built = registry
        ? await cli.withPorts({ registry }, (ports) => run(ports, ports.registry))
        : await cli.withPorts({}, (ports) => run(ports));
      const list = Object.values(built);
      cli.print(
        { ok: true, env: plan.env, sha: plan.sha, images: list },
        list.map((b) => `${b.name}\t${b.id}\t${b.reused ? 'reused' : 'built'}\t${b.localTag}`),
      );
    });
}
