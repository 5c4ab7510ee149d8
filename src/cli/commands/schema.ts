import type { Command } from 'commander';
import { manifestJsonSchema } from '../../manifest/json-schema.js';
import type { Cli } from '../cli.js';

/** `slipway schema`: prints the manifest's JSON Schema. */
export function registerSchema(program: Command, cli: Cli): void {
  program
    .command('schema')
    .description("print the manifest's JSON Schema (the same as schema/manifest.schema.json)")
    .action(() => {
      cli.io.stdout(`${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
    });
}
