import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SlipwayError } from '../../core/errors.js';
import type { LoadedManifest } from '../../manifest/load.js';
import type { Cli } from '../cli.js';

/**
 * The attestation key policy of a command: `--key FILE` (relative to the working directory),
 * else the manifest's `publish.attestations.publicKey` (relative to the manifest); none: [].
 */
export async function policyKeys(
  cli: Cli,
  loaded: LoadedManifest | null,
  flag?: string,
): Promise<KeyObject[]> {
  const configured = loaded?.manifest.publish.attestations?.publicKey;
  const file =
    flag !== undefined
      ? cli.resolve(flag)
      : configured && loaded
        ? path.resolve(loaded.dir, configured)
        : null;
  if (file === null) return [];
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new SlipwayError(
      'USAGE',
      `cannot read the public key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      {
        resource: file,
        hint:
          flag !== undefined
            ? 'pass --key PUBLIC_KEY_PEM'
            : 'fix publish.attestations.publicKey in the manifest',
      },
    );
  }
  const { publicKeyFromPem } = await import('../../attest/dsse.js');
  return [publicKeyFromPem(pem, `public key ${file}`)];
}
