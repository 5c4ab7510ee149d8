// Context packing through Slipway's built library (dist/), as `slipway build` does it: list the
// context after .dockerignore, then `pack` streams the tar to stdout, or `digest` computes the
// context digest (what the plan and the up-to-date check use).
// Usage: node bench/probes/context.mjs pack|digest DIR
import { pipeline } from 'node:stream/promises';
import { contextDigest, packContext, readBuildContext } from '../../dist/index.js';

const [mode, dir] = process.argv.slice(2);
const context = await readBuildContext(dir);
if (mode === 'pack') await pipeline(packContext(context), process.stdout);
else if (mode === 'digest') process.stderr.write(`${await contextDigest(context)}\n`);
else throw new Error(`unknown mode ${mode}`);
