import type { Command } from 'commander';
import type { Cli } from '../cli.js';

/** `slipway verify [--remote] [--strict]`: the pinning contract (and, with --remote, the pins' existence). */
export function registerVerify(program: Command, cli: Cli): void {
  program
    .command('verify')
    .description(
      'check the manifest: schema, pinning contract, Dockerfile preflight; --remote also checks every pinned commit exists',
    )
    .option('--remote', 'also check that each pinned commit exists at its source', false)
    .option('--strict', 'refuse unpinned local path sources (CI)', false)
    .action(async (opts: { remote: boolean; strict: boolean }) => {
      const loaded = await cli.loadManifest({ contract: false });
      const { verifyManifest } = await import('../../verify/verify.js');
      const result = await cli.withPorts({}, (ports) =>
        verifyManifest(loaded, {
          remote: opts.remote,
          strict: opts.strict || cli.settings.ci,
          sources: ports.sources,
          env: cli.settings.env,
          sink: ports.sink,
        }),
      );
      for (const w of result.warnings)
        cli.log(`warning: ${w.at}: ${w.message}${w.hint ? ` (hint: ${w.hint})` : ''}`);
      cli.print({ ok: true, manifest: loaded.file, ...result }, [
        `ok: ${loaded.file}`,
        `  ${result.templates} template${result.templates === 1 ? '' : 's'}, ${result.images} image${result.images === 1 ? '' : 's'}, ${result.pins} pin${result.pins === 1 ? '' : 's'}`,
        ...result.checks.map((c) => `  checked: ${c}`),
      ]);
    });
}
