import type { Command } from 'commander';
import { pinStoreUrlFor, resolveActor } from '../../app/settings.js';
import type { AttestationStore } from '../../attest/store.js';
import { SlipwayError } from '../../core/errors.js';
import { ImageRef, isDigest } from '../../core/image-ref.js';
import type { LoadedManifest } from '../../manifest/load.js';
import type { PinStore } from '../../promote/pin-store.js';
import type { PromotionResult } from '../../promote/promote.js';
import type { Registry } from '../../publish/registry.js';
import type { Cli } from '../cli.js';
import { policyKeys } from './keys.js';

interface PinsOptions {
  store?: string;
}

/** The actor recorded in history: `--by`, else the environment or the git user, else `unknown`. */
export async function actorFor(cli: Cli, dir: string, by?: string): Promise<string> {
  return (await resolveActor(cli.settings, dir, by)) ?? 'unknown';
}

/**
 * The actor for an audited override (a forced promotion, a rollback): refused when nobody can be
 * named, since an audit record that says "unknown" audits nothing.
 */
export async function requireActor(
  cli: Cli,
  dir: string,
  by: string | undefined,
  what: string,
): Promise<string> {
  const actor = await resolveActor(cli.settings, dir, by);
  if (actor === null) {
    throw new SlipwayError(
      'GATE_REFUSED',
      `refusing ${what}: nobody can be named as its actor for the audit trail`,
      {
        hint: 'pass --by NAME (or set SLIPWAY_ACTOR; in CI, GITHUB_ACTOR / GITEA_ACTOR are used)',
      },
    );
  }
  return actor;
}

/** `slipway pins …`: migrate, list, history, promote and roll back runtime image pins. */
export function registerPins(program: Command, cli: Cli): void {
  const pins = program
    .command('pins')
    .description('runtime image pins: promote a smoked digest, list, history, roll back')
    .option(
      '--store <url>',
      'pin store: file:PATH or postgres://… (default: $SLIPWAY_PIN_STORE, else file:<manifest dir>/.slipway/pins.json)',
    );

  const storeUrl = async (manifest?: LoadedManifest): Promise<string> => {
    const o = pins.opts<PinsOptions>();
    // The library keeps the password out of every description and error (describePostgresUrl,
    // translatePgError), so output stays readable even when the password is an ordinary word.
    if (o.store ?? cli.settings.pinStoreUrl) return pinStoreUrlFor(cli.settings, cli.io.cwd, o.store);
    const m = manifest ?? (await cli.loadManifest());
    return pinStoreUrlFor(cli.settings, m.dir);
  };
  const withStore = <T>(url: string, fn: (store: PinStore) => Promise<T>): Promise<T> =>
    cli.withPorts({ pinStore: url }, (ports) => fn(ports.pins));
  const runtimeOf = (loaded: LoadedManifest, runtime: string) => {
    const pin = loaded.manifest.pins[runtime];
    if (!pin) {
      const known = Object.keys(loaded.manifest.pins);
      cli.usage(
        `unknown runtime "${runtime}": ${known.length ? `the manifest pins ${known.join(', ')}` : 'the manifest has no pins'}`,
        `runtimes are declared under "pins" in ${loaded.file}`,
      );
    }
    const image = loaded.manifest.images[pin.image];
    if (!image) cli.usage(`runtime ${runtime} names image ${pin.image}, which the manifest does not define`);
    return { imageName: pin.image, repository: image.repository };
  };
  const report = (result: PromotionResult, extra: Record<string, unknown> = {}) => {
    const { plan } = result;
    const from = plan.from?.digest ?? '(no pin)';
    const lines: string[] = [];
    if (result.dryRun) {
      lines.push(
        plan.noop
          ? `dry run: ${plan.runtime} is already at ${plan.to.digest}; nothing to change`
          : `dry run: would ${plan.kind} ${plan.runtime}: ${from} -> ${plan.to.digest}`,
      );
    } else if (plan.noop) {
      lines.push(`${plan.runtime} is already at ${plan.to.digest}; nothing changed`);
    } else {
      lines.push(
        `${plan.kind === 'rollback' ? 'rolled back' : 'promoted'} ${plan.runtime}: ${from} -> ${plan.to.digest}`,
      );
    }
    lines.push(`  image: ${plan.to.image}${plan.to.tag ? ` (from tag ${plan.to.tag})` : ''}`);
    lines.push(`  smoke: ${plan.gate.passed ? 'passed' : 'NOT passed'}: ${plan.gate.message}`);
    if (plan.forced) lines.push(`  FORCED by ${plan.by}: ${plan.reason}`);
    if (result.retagged) lines.push(`  tagged: ${result.retagged}`);
    cli.print({ ok: true, ...extra, ...result }, lines);
  };
  const parseExpect = (v: string | undefined): string | null | undefined => {
    if (v === undefined) return undefined;
    if (v === 'none') return null;
    if (!isDigest(v))
      cli.usage(
        `--expect ${v} is not a digest`,
        'use --expect sha256:<64 hex>, or --expect none for "no pin yet"',
      );
    return v;
  };

  pins
    .command('migrate')
    .description('create or upgrade the pin store tables (idempotent; a file store is only checked)')
    .action(async () => {
      const url = await storeUrl();
      const { migratePinStore } = await import('../../promote/open.js');
      const r = await migratePinStore(url, { cwd: cli.io.cwd });
      cli.print({ ok: true, ...r }, [
        r.applied.length
          ? `migrated ${r.store}: applied ${r.applied.join(', ')} (now at version ${r.version})`
          : `${r.store} is up to date (version ${r.version})`,
      ]);
    });

  pins
    .command('list')
    .description('show every runtime pin')
    .action(async () => {
      const url = await storeUrl();
      await withStore(url, async (store) => {
        const list = await store.listPins();
        cli.print(
          { ok: true, store: store.description, pins: list },
          list.length === 0
            ? [`no pins in ${store.description}`]
            : list.map(
                (p) =>
                  `${p.runtime}  ${p.image}${p.tag ? ` (${p.tag})` : ''}  by ${p.updatedBy} at ${p.updatedAt}${p.reason ? `: ${p.reason}` : ''}`,
              ),
        );
      });
    });

  pins
    .command('history')
    .description("a runtime's pin changes, newest first")
    .argument('<runtime>')
    .action(async (runtime: string) => {
      const url = await storeUrl();
      await withStore(url, async (store) => {
        const entries = await store.history(runtime);
        cli.print(
          { ok: true, store: store.description, runtime, entries },
          entries.length === 0
            ? [`no history for ${runtime} in ${store.description}`]
            : entries.map(
                (h) =>
                  `#${h.id} ${h.at} ${h.kind}${h.forced ? ' FORCED' : ''} ${h.fromDigest ?? '(no pin)'} -> ${h.toDigest} by ${h.by}${h.reason ? `: ${h.reason}` : ''}`,
              ),
        );
      });
    });

  pins
    .command('promote')
    .description('pin a runtime to an image digest that passed smoke (a tag is resolved to its digest first)')
    .argument('<runtime>', 'a runtime under "pins" in the manifest')
    .argument('<image-ref>', 'name@sha256:… or name:tag')
    .option(
      '--expect <digest>',
      'the digest the pin must hold now (none: no pin yet); default: the value read first',
    )
    .option('--force', 'override the smoke gate (audited; needs --reason)', false)
    .option('--reason <text>', 'why (recorded in history)')
    .option('--retag <tag>', 'after the pin moved, point this registry tag at the digest')
    .option('--registry <url>', 'registry for resolving a tag and --retag (default: publish.registry)')
    .option('--dry-run', 'show the change, write nothing', false)
    .option(
      '--by <name>',
      'who promotes (default: $SLIPWAY_ACTOR, $GITHUB_ACTOR, $GITEA_ACTOR, $USER, then the git user)',
    )
    .option(
      '--key <file>',
      'public key (PEM, e.g. cosign.pub) a registry smoke attestation must verify with (default: publish.attestations.publicKey)',
    )
    .option(
      '--to-registry <url>',
      'copy the image by digest (with its attestations) into this registry first, and pin the copy',
    )
    .action(
      async (
        runtime: string,
        imageRef: string,
        opts: {
          expect?: string;
          force: boolean;
          reason?: string;
          retag?: string;
          registry?: string;
          dryRun: boolean;
          by?: string;
          key?: string;
          toRegistry?: string;
        },
      ) => {
        const loaded = await cli.loadManifest();
        const { promote } = await import('../../promote/promote.js');
        const { imageName, repository } = runtimeOf(loaded, runtime);
        const ref = ImageRef.parse(imageRef);
        const registryUrl = opts.registry ?? loaded.manifest.publish.registry;
        const keys = await policyKeys(cli, loaded, opts.key);
        const by = opts.force
          ? await requireActor(cli, loaded.dir, opts.by, `a forced promotion of ${runtime}`)
          : await actorFor(cli, loaded.dir, opts.by);
        if (opts.toRegistry !== undefined) {
          if (registryUrl === undefined) {
            cli.usage(
              `--to-registry needs the registry ${imageRef} is in`,
              'pass --registry oci://… or ecr://… (or set publish.registry in the manifest)',
            );
          }
          const url = await storeUrl(loaded);
          const { copyForPromotion } = await import('../../promote/across.js');
          await cli.withPorts(
            { pinStore: url, registry: registryUrl, targetRegistry: opts.toRegistry },
            async (ports) => {
              const copied = await copyForPromotion(
                ref,
                repository,
                { registry: ports.registry, attestations: ports.attestations },
                ports.target,
                { sink: cli.sink },
              );
              const result = await promote(ports.pins, {
                runtime,
                ref:
                  copied.tag === null
                    ? copied.ref
                    : ImageRef.of({
                        registry: copied.ref.registry,
                        repository: copied.ref.repository,
                        tag: copied.tag,
                        digest: copied.digest,
                      }),
                repository,
                imageName,
                by,
                force: opts.force,
                dryRun: opts.dryRun,
                sink: cli.sink,
                registry: ports.target.registry,
                attestations: { store: ports.target.attestations, repository, keys },
                ...(opts.reason === undefined ? {} : { reason: opts.reason }),
                ...(opts.retag === undefined ? {} : { retag: opts.retag }),
                ...(opts.expect === undefined ? {} : { expect: parseExpect(opts.expect) }),
              });
              report(result, {
                store: ports.pins.description,
                copied: {
                  from: ports.registry.imageName(repository).withDigest(copied.digest).toString(),
                  to: copied.ref.toString(),
                  blobs: copied.transfer,
                  attestations: copied.attestations,
                },
              });
            },
          );
          return;
        }
        const needsRegistry = ref.digest === undefined || opts.retag !== undefined;
        // The registry is read whenever it is known: the smoke gate falls back to its attestations.
        const useRegistry = registryUrl !== undefined;
        const resolveThrough =
          useRegistry && (needsRegistry || ref.registry === undefined || opts.registry !== undefined);
        if (!useRegistry && needsRegistry) {
          cli.usage(
            ref.digest === undefined
              ? `${imageRef} is a tag: resolving it needs a registry`
              : `--retag ${opts.retag} needs a registry`,
            'pass --registry oci://host:port or ecr://…, or set publish.registry in the manifest',
          );
        }
        const url = await storeUrl(loaded);
        await cli.withPorts(
          { pinStore: url, registry: useRegistry ? registryUrl : undefined },
          async (ports) => {
            const opened = 'registry' in ports ? (ports.registry as Registry) : undefined;
            const registry = resolveThrough ? opened : undefined;
            const attestations =
              'attestations' in ports ? (ports.attestations as AttestationStore) : undefined;
            // The attestations are read where the image is: the reference's registry must be this one.
            const attRepository =
              opened && attestations
                ? ref.registry === undefined
                  ? ref.repository
                  : opened.repositoryOf(ImageRef.parse(ref.name))
                : null;
            const store = ports.pins;
            const result = await promote(store, {
              runtime,
              ref,
              repository,
              imageName,
              by,
              force: opts.force,
              dryRun: opts.dryRun,
              sink: cli.sink,
              ...(registry ? { registry } : {}),
              ...(attestations && attRepository !== null
                ? { attestations: { store: attestations, repository: attRepository, keys } }
                : {}),
              ...(opts.reason === undefined ? {} : { reason: opts.reason }),
              ...(opts.retag === undefined ? {} : { retag: opts.retag }),
              ...(opts.expect === undefined ? {} : { expect: parseExpect(opts.expect) }),
            });
            report(result, { store: store.description });
          },
        );
      },
    );

  pins
    .command('rollback')
    .description(
      'move a runtime back to its previous pin (or to history entry --to): a recorded, gated promotion',
    )
    .argument('<runtime>')
    .option('--to <entry>', 'the history entry (#id from `pins history`) whose digest to return to')
    .option('--expect <digest>', 'the digest the pin must hold now (default: the value read first)')
    .option('--reason <text>', 'why (recorded in history)')
    .option('--force', 'override the smoke gate (audited; needs --reason)', false)
    .option('--dry-run', 'show the change, write nothing', false)
    .option(
      '--by <name>',
      'who rolls back (default: $SLIPWAY_ACTOR, $GITHUB_ACTOR, $GITEA_ACTOR, $USER, then the git user)',
    )
    .action(
      async (
        runtime: string,
        opts: { to?: string; expect?: string; reason?: string; force: boolean; dryRun: boolean; by?: string },
      ) => {
        const loaded = await cli.loadManifest();
        const { rollback } = await import('../../promote/promote.js');
        const { imageName } = runtimeOf(loaded, runtime);
        let to: number | undefined;
        if (opts.to !== undefined) {
          to = Number(opts.to.replace(/^#/, ''));
          if (!Number.isInteger(to) || to <= 0) cli.usage(`--to ${opts.to} is not a history entry id`);
        }
        const by = await requireActor(cli, loaded.dir, opts.by, `a rollback of ${runtime}`);
        const url = await storeUrl(loaded);
        await withStore(url, async (store) => {
          const result = await rollback(store, {
            runtime,
            imageName,
            by,
            force: opts.force,
            dryRun: opts.dryRun,
            sink: cli.sink,
            ...(to === undefined ? {} : { to }),
            ...(opts.reason === undefined ? {} : { reason: opts.reason }),
            ...(opts.expect === undefined ? {} : { expect: parseExpect(opts.expect) }),
          });
          report(result, { store: store.description });
        });
      },
    );

  // main.ts configures only the top-level commands; nested ones need the same to report usage
  // errors through the CLI (exit 2) instead of exiting the process.
  for (const sub of pins.commands) {
    sub
      .exitOverride()
      .configureOutput({ writeOut: (s) => cli.io.stdout(s), writeErr: (s) => cli.io.stderr(s) });
  }
}
