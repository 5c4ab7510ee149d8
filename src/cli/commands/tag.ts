import type { Command } from 'commander';
import { isSlipwayError } from '../../core/errors.js';
import { ImageRef } from '../../core/image-ref.js';
import type { RepositorySettings } from '../../publish/registry.js';
import type { Cli } from '../cli.js';

/** `slipway tag SRC DST [--registry URL]`: points DST at SRC's manifest without moving a layer. */
export function registerTag(program: Command, cli: Cli): void {
  program
    .command('tag')
    .description(
      'point DST (repository:tag) at the image SRC names (a tag or @digest) by copying its manifest; no layer is pulled or pushed',
    )
    .argument('<src>', 'repository:tag or repository@sha256:..., or a full name in the registry')
    .argument('<dst>', 'repository:tag, or a full name in the registry')
    .option(
      '--registry <url>',
      'ecr://... or oci://host[:port][/prefix] (default: manifest publish.registry)',
    )
    .option('--create-repos', 'create the target ECR repository when missing', false)
    .action(async (src: string, dst: string, opts: { registry?: string; createRepos: boolean }) => {
      const source = ImageRef.parse(src, 'source image');
      const target = ImageRef.parse(dst, 'target image');
      let url = opts.registry;
      let settings: RepositorySettings | undefined;
      if (url === undefined || opts.createRepos) {
        // The manifest is optional here: it only supplies the default registry and repository settings.
        const loaded = await cli.loadManifest().catch((err: unknown) => {
          if (isSlipwayError(err, 'MANIFEST_NOT_FOUND') && url !== undefined) return undefined;
          throw err;
        });
        url ??= loaded?.manifest.publish.registry;
        settings = loaded?.manifest.publish.ecr;
      }
      if (!url) cli.usage('no registry: pass --registry URL or set publish.registry in the manifest');
      const { copyImage } = await import('../../publish/copy.js');
      const result = await cli.withPorts({ registry: url }, (ports) =>
        copyImage(source, target, ports.registry, {
          createRepos: opts.createRepos,
          ...(settings ? { repositorySettings: settings } : {}),
          sink: ports.sink,
        }),
      );
      cli.print(
        {
          ok: true,
          source: result.source.toString(),
          target: result.target.toString(),
          digest: result.digest,
          changed: result.changed,
        },
        `${result.target}@${result.digest}`,
      );
    });
}
