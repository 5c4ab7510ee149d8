import type { Command } from 'commander';
import type { CheckedAttestation } from '../../attest/verify.js';
import { SlipwayError } from '../../core/errors.js';
import { ImageRef } from '../../core/image-ref.js';
import type { LoadedManifest } from '../../manifest/load.js';
import type { Cli } from '../cli.js';
import { policyKeys } from './keys.js';

/** One line of what a statement says, for the text output (the predicate types passed in load with the command). */
function describe(
  a: CheckedAttestation,
  { SLSA_PROVENANCE_TYPE, SMOKE_PREDICATE_TYPE }: typeof import('../../attest/statement.js'),
): string {
  const p = (a.statement?.predicate ?? {}) as Record<string, unknown>;
  if (a.predicateType === SMOKE_PREDICATE_TYPE) {
    const runner = (p.runner ?? {}) as Record<string, unknown>;
    return `smoke ${p.passed === true ? 'PASSED' : 'FAILED'} at ${String(p.finishedOn)} (${String(p.summary)}) by ${String(p.by)} on ${String(runner.host)}`;
  }
  if (a.predicateType === SLSA_PROVENANCE_TYPE) {
    const def = (p.buildDefinition ?? {}) as {
      externalParameters?: { source?: { repository?: string; revision?: string } };
    };
    const src = def.externalParameters?.source;
    const deps = (
      (p.buildDefinition as { resolvedDependencies?: unknown[] } | undefined)?.resolvedDependencies ?? []
    ).length;
    return `built from ${src?.repository ?? '(unknown source)'} at ${src?.revision ?? '?'}; ${deps} resolved dependencies`;
  }
  return a.statement ? 'in-toto statement' : 'not an in-toto statement';
}

/** `slipway attestations REF`: an image's attestations from the registry, each signature checked. */
export function registerAttestations(program: Command, cli: Cli): void {
  program
    .command('attestations')
    .description(
      "list an image's attestations in the registry (cosign .att tag and OCI referrers) and verify each signature",
    )
    .argument('<image-ref>', 'name@sha256:… or name:tag (a repository of the manifest, or a full reference)')
    .option('--registry <url>', 'the registry (default: publish.registry)')
    .option(
      '--key <file>',
      'public key (PEM, e.g. cosign.pub) to verify with (default: publish.attestations.publicKey)',
    )
    .action(async (imageRef: string, opts: { registry?: string; key?: string }) => {
      const loaded: LoadedManifest | null =
        opts.registry !== undefined && opts.key !== undefined ? null : await cli.loadManifest();
      const registryUrl = opts.registry ?? loaded?.manifest.publish.registry;
      if (registryUrl === undefined) {
        cli.usage('no registry: pass --registry URL or set publish.registry in the manifest');
      }
      const keys = await policyKeys(cli, loaded, opts.key);
      const ref = ImageRef.parse(imageRef);
      const [{ listAttestations }, { keyFingerprint }, statements, { registryRepository }] =
        await Promise.all([
          import('../../attest/attest.js'),
          import('../../attest/dsse.js'),
          import('../../attest/statement.js'),
          import('../../promote/promote.js'),
        ]);
      await cli.withPorts({ registry: registryUrl }, async (ports) => {
        const repository = registryRepository(ports.registry, ref);
        const digest = ref.digest ?? (await ports.registry.resolve(repository, ref.tag ?? 'latest'));
        if (!digest) {
          throw new SlipwayError('REGISTRY_ERROR', `${imageRef} does not exist in ${ports.registry.url}`, {
            resource: imageRef,
            hint: 'check the tag, or name a digest',
          });
        }
        const list = await listAttestations(ports.attestations, repository, digest, keys);
        const image = ports.registry.imageName(repository).withDigest(digest).toString();
        const bad = keys.length > 0 && list.some((a) => a.signature !== 'verified');
        if (bad) cli.exitCode = 1;
        cli.print(
          {
            ok: !bad,
            image,
            digest,
            keys: keys.map(keyFingerprint),
            attestations: list.map((a) => ({
              digest: a.digest,
              predicateType: a.predicateType,
              signature: a.signature,
              subjectMatches: a.subjectMatches,
              foundIn: a.foundIn,
              statement: a.statement,
            })),
          },
          [
            `${image}: ${list.length} attestation(s)${keys.length ? ` (key ${keys.map(keyFingerprint).join(', ')})` : ' (no key: signatures not checked)'}`,
            ...list.flatMap((a) => [
              `  ${a.predicateType ?? '(unknown type)'}  signature: ${a.signature}${a.subjectMatches ? '' : '  SUBJECT MISMATCH'}  in: ${a.foundIn.join(', ')}`,
              `    ${describe(a, statements)}`,
            ]),
          ],
        );
      });
    });
}
