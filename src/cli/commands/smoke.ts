import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { pinStoreUrlFor } from '../../app/settings.js';
import { SlipwayError } from '../../core/errors.js';
import { ImageRef } from '../../core/image-ref.js';
import type { LoadedManifest } from '../../manifest/load.js';
import type { SmokeSpec } from '../../manifest/schema.js';
import type { EngineAuth } from '../../publish/registry.js';
import type { Cli } from '../cli.js';
import { actorFor } from './pins.js';
import { readPlanDocument } from './plan.js';

interface SmokeCommandOptions {
  ref?: string;
  local?: string;
  junit?: string;
  allowSkip: boolean;
  pins?: string;
  timeout?: string;
  plan?: string;
  registry?: string;
  signKey?: string;
}

/** `slipway smoke IMAGE --ref REF | --local ID`: boot the image, prove its identity, record the verdict. */
export function registerSmoke(program: Command, cli: Cli): void {
  program
    .command('smoke')
    .description(
      "boot a pushed image (or a local one) and prove its identity files against the image's smoke spec; exit 1 unless it passes",
    )
    .argument('<image>', 'the manifest image name (its smoke spec comes from the manifest)')
    .addOption(
      new Option(
        '--ref <reference>',
        'the pushed reference to pull and boot (registry/repo@sha256:... or :tag)',
      ).conflicts(['local', 'plan']),
    )
    .addOption(
      new Option('--local <id>', 'boot a local image id or name (no registry, no smoke record)').conflicts([
        'ref',
        'plan',
      ]),
    )
    .addOption(
      new Option(
        '--plan <file>',
        "smoke the digest pushed for this plan (the image's immutable tag in the registry), e.g. on the runner that pushed it",
      ).conflicts(['ref', 'local']),
    )
    .option('--junit <file>', 'also write the report as JUnit XML')
    .option('--allow-skip', 'report an image without a smoke spec as skipped (refused in CI)', false)
    .option(
      '--pins <url>',
      'pin store for the smoke record (default: $SLIPWAY_PIN_STORE or file:<manifest dir>/.slipway/pins.json)',
    )
    .option('--timeout <seconds>', "readiness timeout, overriding the spec's timeoutSeconds")
    .option(
      '--registry <url>',
      'the registry the image is in (--plan: the one it was pushed to); the verdict is attached there as an attestation (default: publish.registry)',
    )
    .option(
      '--sign-key <file>',
      'sign the smoke attestation with this ECDSA P-256 PEM key (else $SLIPWAY_SIGNING_KEY[_FILE])',
    )
    .action(async (imageName: string, opts: SmokeCommandOptions) => {
      if (!opts.ref && !opts.local && !opts.plan)
        cli.usage('smoke needs --ref REFERENCE (a pushed image), --plan FILE or --local ID');
      let timeoutSeconds: number | undefined;
      if (opts.timeout !== undefined) {
        timeoutSeconds = Number(opts.timeout);
        if (!Number.isInteger(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 3600)
          cli.usage(`--timeout must be a whole number of seconds between 1 and 3600, not "${opts.timeout}"`);
      }
      if (opts.allowSkip && cli.settings.ci) {
        cli.usage(
          `refusing to allow a smoke skip in CI (image ${imageName})`,
          'a skipped smoke run is not a verdict: add a smoke spec to the image in manifest.json instead of --allow-skip',
        );
      }
      const loaded = await cli.loadManifest();
      const [
        { attestSmoke },
        { templatesAsserted, templatesFromReceipt },
        { toJUnitXml },
        { recordSmoke },
        { renderReport },
        { runSmoke },
        { readReceipt },
      ] = await Promise.all([
        import('../../release/attest-step.js'),
        import('../../smoke/expected.js'),
        import('../../smoke/junit.js'),
        import('../../smoke/record.js'),
        import('../../smoke/report.js'),
        import('../../smoke/run.js'),
        import('../../stage/stage.js'),
      ]);
      const fromPlan = opts.plan
        ? await pushedForPlan(cli, loaded, imageName, opts.plan, opts.registry)
        : undefined;
      const ref = opts.ref ? ImageRef.parse(opts.ref, '--ref') : fromPlan?.ref;
      const image = loaded.manifest.images[imageName];
      if (!image) {
        const names = Object.keys(loaded.manifest.images);
        cli.usage(
          `no image "${imageName}" in ${loaded.file}`,
          names.length > 0 ? `images are: ${names.join(', ')}` : 'the manifest declares no images',
        );
      }
      const receipt = await readReceipt(loaded);
      const templates = receipt
        ? await templatesFromReceipt(loaded, receipt, templatesAsserted(image.smoke))
        : {};
      if (!receipt && templatesAsserted(image.smoke).length > 0)
        cli.log(
          `[smoke] ${imageName} no staging receipt here: expected template digests come from the image labels`,
        );

      // Pull credentials come from the settings; the registry host from the reference itself.
      const auth: EngineAuth | undefined =
        fromPlan?.auth ??
        (ref
          ? { ...cli.settings.registryCredentials, ...(ref.registry ? { serveraddress: ref.registry } : {}) }
          : undefined);
      const report = await cli.withPorts({}, (ports) =>
        runSmoke({
          engine: ports.engine,
          image: ref ? ref.toString() : (opts.local ?? ''),
          imageName,
          // A plan fixes the spec its images are judged by.
          spec: fromPlan?.spec ?? image.smoke,
          templates,
          ...(auth ? { pull: { auth } } : {}),
          allowSkip: opts.allowSkip,
          ci: cli.settings.ci,
          ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
          sink: ports.sink,
          ...(cli.io.signal ? { signal: cli.io.signal } : {}),
        }),
      );

      if (opts.junit) {
        const file = cli.resolve(opts.junit);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, toJUnitXml(report));
      }
      cli.print(report, renderReport(report));

      if (report.digest && !report.skipped && ref) {
        // A verdict on a pushed digest is recorded in the pin store and attached to the digest.
        const by = await actorFor(cli, loaded.dir);
        const url = pinStoreUrlFor(cli.settings, loaded.dir, opts.pins);
        await cli.withPorts({ pinStore: url }, async (ports) => {
          await recordSmoke(ports.verdicts, report, { by, repository: ref.name, at: ports.clock() });
          cli.log(
            `[smoke] ${imageName} recorded ${report.passed ? 'a pass' : 'a failure'} for ${report.digest} in ${ports.pins.description}`,
          );
        });
        const registryUrl = opts.registry ?? loaded.manifest.publish.registry;
        if (registryUrl === undefined) {
          cli.log(
            `[smoke] ${imageName} no registry named (--registry or publish.registry): no attestation attached`,
          );
        } else {
          await cli.withPorts({ registry: registryUrl, sign: opts.signKey ?? true }, async (ports) => {
            const repository = ports.registry.repositoryOf(ref);
            if (repository === null) {
              cli.log(
                `[smoke] ${imageName} ${ref.name} is not in ${ports.registry.url}: no attestation attached`,
              );
              return;
            }
            const expected = Object.entries(templates).map(([name, t]) => ({
              name,
              ref: t.ref,
              digest: t.digest,
            }));
            await attestSmoke(
              { name: imageName, repository, templates: expected },
              report,
              { by, runner: cli.settings.runner },
              ports,
            );
          });
        }
      }
      const code = report.failure?.code;
      cli.exitCode =
        report.passed || report.skipped
          ? 0
          : code === 'engine-unreachable' || code === 'registry-unreachable'
            ? 3
            : 1;
    });
}

/** The digest pushed for a plan's image (its first immutable tag), with the pull credentials. */
async function pushedForPlan(
  cli: Cli,
  loaded: LoadedManifest,
  imageName: string,
  planFile: string,
  registryFlag: string | undefined,
): Promise<{ ref: ImageRef; auth: EngineAuth; spec: SmokeSpec | undefined }> {
  const plan = await readPlanDocument(cli, planFile);
  const planned = plan.images.find((i) => i.name === imageName);
  if (!planned) {
    cli.usage(
      `image "${imageName}" is not in the plan ${planFile}`,
      `planned images: ${plan.images.map((i) => i.name).join(', ') || '(none)'}`,
    );
  }
  const url = registryFlag ?? loaded.manifest.publish.registry;
  if (!url)
    cli.usage(
      'smoke --plan resolves the pushed digest in a registry: pass --registry URL or set publish.registry',
    );
  const tag = planned.immutableTags[0] ?? '';
  return cli.withPorts({ registry: url }, async (ports) => {
    const name = ports.registry.imageName(planned.repository);
    const digest = await ports.registry.resolve(planned.repository, tag);
    if (digest === null) {
      throw new SlipwayError(
        'GATE_REFUSED',
        `${name.withTag(tag)} does not exist: ${imageName} was not pushed for this plan`,
        {
          resource: name.withTag(tag).toString(),
          hint: `push it first: slipway push ${imageName} --plan ${planFile}`,
        },
      );
    }
    return {
      ref: name.withDigest(digest),
      auth: await ports.registry.engineAuth(),
      spec: planned.smoke ?? undefined,
    };
  });
}
