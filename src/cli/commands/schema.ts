import type { Command } from 'commander';
import type { Cli } from '../cli.js';

/** `slipway schema`: prints the manifest's JSON Schema. */
export function registerSchema(program: Command, cli: Cli): void {
  program
    .command('schema')
    .description("print the manifest's JSON Schema (the same as schema/manifest.schema.json)")
    .action(async () => {
      const { manifestJsonSchema } = await import('../../manifest/json-schema.js');
      cli.io.stdout(`${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
    });
}
