import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { ImageRef } from '../../core/image-ref.js';
import { openPinStore } from '../../promote/open.js';
import type { EngineAuth } from '../../publish/registry.js';
import { templatesAsserted, templatesFromReceipt } from '../../smoke/expected.js';
import { toJUnitXml } from '../../smoke/junit.js';
import { recordSmoke } from '../../smoke/record.js';
import { renderReport } from '../../smoke/report.js';
import { runSmoke } from '../../smoke/run.js';
import { readReceipt } from '../../stage/stage.js';
import type { Cli } from '../cli.js';
import { timeoutsOf } from '../timeouts.js';

interface SmokeCommandOptions {
  ref?: string;
  local?: string;
  junit?: string;
  allowSkip: boolean;
  pins?: string;
  timeout?: string;
}

/**
 * testcontainers reads its settings from process.env only. Offline there is no reaper image
 * (smoke removes its own containers anyway), and inside a container its host detection would
 * start a helper container; the caller's own values win, and `io.env` is never modified.
 */
function configureTestcontainers(env: NodeJS.ProcessEnv): void {
  const defaults = { TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' };
  for (const [k, v] of Object.entries(defaults)) {
    if (process.env[k] === undefined) process.env[k] = env[k] ?? v;
  }
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
      ).conflicts('local'),
    )
    .addOption(
      new Option('--local <id>', 'boot a local image id or name (no registry, no smoke record)').conflicts(
        'ref',
      ),
    )
    .option('--junit <file>', 'also write the report as JUnit XML')
    .option('--allow-skip', 'report an image without a smoke spec as skipped (refused in CI)', false)
    .option(
      '--pins <url>',
      'pin store for the smoke record (default: $SLIPWAY_PIN_STORE or file:<manifest dir>/.slipway/pins.json)',
    )
    .option('--timeout <seconds>', "readiness timeout, overriding the spec's timeoutSeconds")
    .action(async (imageName: string, opts: SmokeCommandOptions) => {
      if (!opts.ref && !opts.local) cli.usage('smoke needs --ref REFERENCE (a pushed image) or --local ID');
      let timeoutSeconds: number | undefined;
      if (opts.timeout !== undefined) {
        timeoutSeconds = Number(opts.timeout);
        if (!Number.isInteger(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 3600)
          cli.usage(`--timeout must be a whole number of seconds between 1 and 3600, not "${opts.timeout}"`);
      }
      const ref = opts.ref ? ImageRef.parse(opts.ref, '--ref') : undefined;
      const loaded = await cli.loadManifest();
      const image = loaded.manifest.images[imageName];
      if (!image) {
        const names = Object.keys(loaded.manifest.images);
        cli.usage(
          `no image "${imageName}" in ${loaded.file}`,
          names.length > 0 ? `images are: ${names.join(', ')}` : 'the manifest declares no images',
        );
      }
      const env = cli.io.env;
      const receipt = await readReceipt(loaded);
      const templates = receipt
        ? await templatesFromReceipt(loaded, receipt, templatesAsserted(image.smoke))
        : {};
      if (!receipt && templatesAsserted(image.smoke).length > 0)
        cli.log(
          `[smoke] ${imageName} no staging receipt here: expected template digests come from the image labels`,
        );

      let auth: EngineAuth | undefined;
      if (ref) {
        auth = {
          ...(env.SLIPWAY_REGISTRY_USERNAME ? { username: env.SLIPWAY_REGISTRY_USERNAME } : {}),
          ...(env.SLIPWAY_REGISTRY_PASSWORD ? { password: env.SLIPWAY_REGISTRY_PASSWORD } : {}),
          ...(ref.registry ? { serveraddress: ref.registry } : {}),
        };
      }
      configureTestcontainers(env);
      const report = await runSmoke({
        image: ref ? ref.toString() : (opts.local ?? ''),
        imageName,
        spec: image.smoke,
        templates,
        ...(auth ? { pull: { auth } } : {}),
        allowSkip: opts.allowSkip,
        ci: Boolean(env.CI),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
        sink: cli.sink,
        ...(cli.io.signal ? { signal: cli.io.signal } : {}),
      });

      if (opts.junit) {
        const file = cli.resolve(opts.junit);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, toJUnitXml(report));
      }
      cli.print(report, renderReport(report));

      if (report.digest && !report.skipped) {
        const url =
          opts.pins ?? env.SLIPWAY_PIN_STORE ?? `file:${path.join(loaded.dir, '.slipway', 'pins.json')}`;
        const store = await openPinStore(url, { cwd: cli.io.cwd, timeouts: timeoutsOf(cli) });
        try {
          const by = env.SLIPWAY_ACTOR ?? env.GITHUB_ACTOR ?? env.GITEA_ACTOR ?? env.USER ?? 'unknown';
          await recordSmoke(store, report, { by });
          cli.log(
            `[smoke] ${imageName} recorded ${report.passed ? 'a pass' : 'a failure'} for ${report.digest} in ${store.description}`,
          );
        } finally {
          await store.close();
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
