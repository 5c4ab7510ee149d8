import { z } from 'zod';
import { ManifestSchema } from './schema.js';

/** The manifest's JSON Schema (draft 2020-12), generated from the zod schema, for editors. */
export function manifestJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ManifestSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
  return {
    ...schema,
    $id: 'https://slipway.dev/schema/manifest.schema.json',
    title: 'Slipway manifest',
  };
}
