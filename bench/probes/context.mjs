// Context packing through Slipway's built library (dist/), as `slipway build` does it: list the
// context after .dockerignore, then `pack` streams the tar to stdout, or `digest` computes the
// context digest (what the plan and the up-to-date check use).
// It loads the preflight stage (dist/preflight/), not the whole library: loading every stage and
// its clients (dockerode, undici, pg, the AWS SDK) costs about 150 ms once per CLI run and is no
// part of packing a context.
// Usage: node bench/probes/context.mjs pack|digest DIR
import { pipeline } from 'node:stream/promises';
import { contextDigest, packContext, readBuildContext } from '../../dist/preflight/index.js';

const [mode, dir] = process.argv.slice(2);
const context = await readBuildContext(dir);
if (mode === 'pack') await pipeline(packContext(context), process.stdout);
else if (mode === 'digest') process.stderr.write(`${await contextDigest(context)}\n`);
else throw new Error(`unknown mode ${mode}`);
