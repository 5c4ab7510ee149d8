// Writes schema/manifest.schema.json from the zod schema. A unit test fails when it is stale.
import { writeFileSync } from 'node:fs';
import { manifestJsonSchema } from '../src/manifest/json-schema.js';

const out = new URL('../schema/manifest.schema.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
process.stderr.write(`wrote ${out.pathname}\n`);
