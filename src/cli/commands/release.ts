import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { pinStoreUrlFor } from '../../app/settings.js';
import { SlipwayError } from '../../core/errors.js';
import type { SmokeReport } from '../../smoke/report.js';
import type { Cli } from '../cli.js';
import { policyKeys } from './keys.js';
import { actorFor } from './pins.js';
import { collectBuildArg, parseBuildArgs, readPlanDocument } from './plan.js';

interface ReleaseCommandOptions {
  registry?: string;
  env: string;
  sha?: string;
  pins?: string;
  promote: boolean;
  toRegistry?: string;
  createRepos: boolean;
  overwriteImmutable: boolean;
  buildArg: string[];
  cache: boolean;
  junit?: string;
  by?: string;
  signKey?: string;
  plan?: string;
  finish: boolean;
}

/** `slipway release`: the whole pipeline, failing closed before any moving tag or pin changes. */
export function registerRelease(program: Command, cli: Cli): void {
  program
    .command('release')
    .description(
      'verify, stage, build, push immutable tags, smoke every pushed digest, then move the moving tags and (with --promote) the runtime pins',
    )
    .option(
      '--registry <url>',
      'oci://host[:port][/prefix] or ecr://<account>.dkr.ecr.<region>.amazonaws.com (default: publish.registry)',
    )
    .option('--env <env>', 'environment name rendered into tags', 'dev')
    .option('--sha <sha>', 'source revision (default: git rev-parse HEAD in the manifest directory)')
    .option(
      '--pins <url>',
      'pin store for smoke records and pins (default: $SLIPWAY_PIN_STORE, else file:<manifest dir>/.slipway/pins.json)',
    )
    .option('--promote', "move every manifest pin to its image's verified digest", false)
    .option(
      '--to-registry <url>',
      'with --promote: copy each pinned image by digest (with its attestations) into this registry and pin the copy',
    )
    .option(
      '--create-repos',
      'create missing ECR repositories (with the manifest publish.ecr settings)',
      false,
    )
    .option(
      '--overwrite-immutable',
      'overwrite an immutable tag that names an image built from other inputs (logged; refused without it)',
      false,
    )
    .option('--build-arg <key=value>', 'build arg for every image (repeatable)', collectBuildArg, [])
    .option('--no-cache', 'rebuild even when up to date')
    .option('--junit <file>', 'write every smoke report as JUnit XML (also when a smoke fails)')
    .option(
      '--by <name>',
      'who runs the release (default: $SLIPWAY_ACTOR, $GITHUB_ACTOR, $GITEA_ACTOR, $USER, then the git user)',
    )
    .option(
      '--sign-key <file>',
      'ECDSA P-256 PEM key signing the smoke and provenance attestations (default: $SLIPWAY_SIGNING_KEY, $SLIPWAY_SIGNING_KEY_FILE)',
    )
    .option(
      '--plan <file>',
      'with --finish: the plan (`slipway plan --json`) whose images were pushed and smoked piecewise',
    )
    .option(
      '--finish',
      'finish a plan published piecewise: check every image is pushed and passed smoke, then move the moving tags (and pins with --promote)',
      false,
    )
    .action(async (opts: ReleaseCommandOptions) => {
      if (opts.finish || opts.plan !== undefined) return finish(cli, opts);
      const loaded = await cli.loadManifest();
      const [{ gitHead, gitSource }, { release }, { toJUnitXml }, { renderReport }] = await Promise.all([
        import('../../plan/revision.js'),
        import('../../release/release.js'),
        import('../../smoke/junit.js'),
        import('../../smoke/report.js'),
      ]);
      const registry = opts.registry ?? loaded.manifest.publish.registry;
      if (!registry) cli.usage('no registry: pass --registry URL or set publish.registry in the manifest');
      const pinStore = pinStoreUrlFor(cli.settings, loaded.dir, opts.pins);
      const by = await actorFor(cli, loaded.dir, opts.by);
      const reports: SmokeReport[] = [];
      const writeJUnit = async () => {
        if (!opts.junit || reports.length === 0) return;
        const file = cli.resolve(opts.junit);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, reports.map((r) => toJUnitXml(r)).join('\n'));
      };
      try {
        const request = {
          env: opts.env,
          sha: opts.sha ?? (await gitHead(loaded.dir)),
          source: await gitSource(loaded.dir),
          by,
          promote: opts.promote,
          createRepos: opts.createRepos,
          overwriteImmutable: opts.overwriteImmutable,
          buildArgs: parseBuildArgs(cli, opts.buildArg),
          noCache: !opts.cache,
          ci: cli.settings.ci,
          runner: cli.settings.runner,
          ...(cli.io.signal ? { signal: cli.io.signal } : {}),
          onSmokeReport: (report: SmokeReport) => {
            reports.push(report);
            cli.actions?.smokeReport(report);
            for (const line of renderReport(report)) cli.log(line);
          },
        };
        if (opts.toRegistry !== undefined && !opts.promote)
          cli.usage('--to-registry copies the images the pins move to: it needs --promote');
        const attestationKeys = opts.toRegistry === undefined ? [] : await policyKeys(cli, loaded);
        const result = await cli.withPorts(
          { registry, pinStore, sign: opts.signKey ?? true, targetRegistry: opts.toRegistry },
          (ports) => release(loaded, { ...request, attestationKeys }, ports),
        );
        const images = result.pushed.images.map((i) => ({
          name: i.name,
          repository: i.repository,
          digest: i.digest,
          tags: i.tags,
          smoke: result.smoke.find((s) => s.imageName === i.name)?.passed ? 'passed' : 'failed',
        }));
        cli.print(
          {
            ok: true,
            env: result.plan.env,
            sha: result.plan.sha,
            registry: result.pushed.registry,
            images,
            pins: result.promotions.map((p) => ({ runtime: p.plan.runtime, applied: p.applied, pin: p.pin })),
          },
          [
            ...images.map(
              (i) => `${i.repository}@${i.digest}  tags: ${i.tags.join(', ')}  smoke: ${i.smoke}`,
            ),
            ...result.promotions.map((p) =>
              p.applied
                ? `pin ${p.plan.runtime} -> ${p.pin?.image}`
                : `pin ${p.plan.runtime} already at ${p.pin?.digest ?? p.plan.to.digest} (no change)`,
            ),
          ],
        );
      } finally {
        await writeJUnit();
      }
    });
}

/** `slipway release --plan FILE --finish`: the finishing job of a fan-out publish. */
async function finish(cli: Cli, opts: ReleaseCommandOptions): Promise<void> {
  if (!opts.finish || opts.plan === undefined) {
    cli.usage('--finish and --plan go together', 'e.g. slipway release --plan plan.json --finish --promote');
  }
  if (opts.sha !== undefined || opts.buildArg.length > 0 || opts.junit !== undefined) {
    cli.usage('--finish builds nothing: drop --sha, --build-arg and --junit (the plan fixes them)');
  }
  const loaded = await cli.loadManifest();
  const plan = await readPlanDocument(cli, opts.plan);
  for (const image of plan.images) {
    const declared = loaded.manifest.images[image.name];
    if (declared?.repository !== image.repository) {
      throw new SlipwayError(
        'PLAN_INVALID',
        `${opts.plan}: image ${image.name} (${image.repository}) is not an image of ${loaded.file}`,
        { resource: opts.plan, hint: 'finish the plan with the manifest it was made from' },
      );
    }
  }
  const registry = opts.registry ?? loaded.manifest.publish.registry;
  if (!registry) cli.usage('no registry: pass --registry URL or set publish.registry in the manifest');
  const pinStore = pinStoreUrlFor(cli.settings, loaded.dir, opts.pins);
  const by = await actorFor(cli, loaded.dir, opts.by);
  const keys = await policyKeys(cli, loaded);
  const { finishRelease, recordsOrAttestations } = await import('../../release/finish.js');
  const result = await cli.withPorts({ registry, pinStore }, (ports) =>
    finishRelease(
      plan,
      {
        by,
        promote: opts.promote,
        // Runners that smoked an image may have written to other pin stores: their attestations count.
        verdicts: recordsOrAttestations(ports.verdicts, ports.attestations, keys, ports.pins.description),
        attestations: { store: ports.attestations, keys },
        ...(cli.io.signal ? { signal: cli.io.signal } : {}),
      },
      ports,
    ),
  );
  const images = result.pushed.images.map((i) => ({
    name: i.name,
    repository: i.repository,
    digest: i.digest,
    tags: i.tags,
    smoke: result.verdicts[i.name]?.passed ? 'passed' : 'failed',
  }));
  cli.print(
    {
      ok: true,
      env: plan.env,
      sha: plan.sha,
      registry: result.pushed.registry,
      images,
      pins: result.promotions.map((p) => ({ runtime: p.plan.runtime, applied: p.applied, pin: p.pin })),
    },
    [
      ...images.map((i) => `${i.repository}@${i.digest}  tags: ${i.tags.join(', ')}  smoke: ${i.smoke}`),
      ...result.promotions.map((p) =>
        p.applied
          ? `pin ${p.plan.runtime} -> ${p.pin?.image}`
          : `pin ${p.plan.runtime} already at ${p.pin?.digest ?? p.plan.to.digest} (no change)`,
      ),
    ],
  );
}
