import type { Command } from 'commander';
import { pinStoreUrlFor } from '../../app/settings.js';
import { parseDuration } from '../../status/duration.js';
import type { Cli } from '../cli.js';
import { collectBuildArg, parseBuildArgs } from './plan.js';

interface StatusCommandOptions {
  registry?: string;
  env: string;
  pins?: string;
  check: boolean;
  maxAge?: string;
  buildArg: string[];
}

/** `slipway status`: is what is pinned the newest thing built from the manifest, pushed, and verified? */
export function registerStatus(program: Command, cli: Cli): void {
  program
    .command('status')
    .description(
      'for every manifest image: its repository, {env}-latest, what this checkout would build, and every pin; flags EMPTY, STALE, DRIFT, DANGLING, UNVERIFIED',
    )
    .option(
      '--registry <url>',
      'oci://host[:port][/prefix] or ecr://<account>.dkr.ecr.<region>.amazonaws.com (default: publish.registry)',
    )
    .option('--env <env>', 'environment name rendered into tags', 'dev')
    .option(
      '--pins <url>',
      'pin store with pins and smoke records (default: $SLIPWAY_PIN_STORE, else file:<manifest dir>/.slipway/pins.json)',
    )
    .option('--check', 'exit 1 when any flag is raised', false)
    .option('--max-age <duration>', 'STALE when {env}-latest was built longer ago (e.g. 30d, 12h)')
    .option('--build-arg <key=value>', 'build arg the release passes (repeatable)', collectBuildArg, [])
    .action(async (opts: StatusCommandOptions) => {
      const maxAgeSeconds = opts.maxAge === undefined ? null : parseDuration(opts.maxAge);
      const loaded = await cli.loadManifest();
      const [{ status }, { statusMarkdown, statusTable }] = await Promise.all([
        import('../../status/status.js'),
        import('../../status/render.js'),
      ]);
      const url = opts.registry ?? loaded.manifest.publish.registry;
      if (!url) cli.usage('no registry: pass --registry URL or set publish.registry in the manifest');
      const pinStore = pinStoreUrlFor(cli.settings, loaded.dir, opts.pins);
      const report = await cli.withPorts({ registry: url, pinStore }, (ports) =>
        status(
          loaded,
          { env: opts.env, maxAgeSeconds, buildArgs: parseBuildArgs(cli, opts.buildArg) },
          { registry: ports.registry, pins: ports.pins },
        ),
      );
      cli.print(report, statusTable(report));
      cli.actions?.section(statusMarkdown(report));
      if (opts.check && !report.ok) cli.exitCode = 1;
    });
}
