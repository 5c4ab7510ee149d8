// Publishing through Slipway's built library (dist/), as `slipway push` does it (plan from the
// staged receipt, then the one publishing pipeline: build, push, verify, move tags), with the
// choice `push` has no flag for: a build without any layer cache. The registry is the manifest's
// publish.registry; the templates must be staged (`slipway stage`) first.
// Usage: node bench/probes/publish.mjs MANIFEST ENV SHA buildkit|classic cache|no-cache
import {
  DEFAULT_TIMEOUTS,
  dockerConnectionFromEnv,
  dockerEngine,
  loadManifest,
  makePlan,
  openRegistry,
  publishPlan,
  Redactor,
  readReceipt,
  silentSink,
} from '../../dist/index.js';

const [manifestFile, env, sha, builder, cache] = process.argv.slice(2);
if (!['buildkit', 'classic'].includes(builder) || !['cache', 'no-cache'].includes(cache))
  throw new Error('usage: publish.mjs MANIFEST ENV SHA buildkit|classic cache|no-cache');
const loaded = await loadManifest(manifestFile);
const receipt = await readReceipt(loaded);
if (!receipt) throw new Error(`${manifestFile}: nothing staged`);
const plan = await makePlan(loaded, { env, sha, receipt });
const redactor = new Redactor();
const ports = {
  engine: dockerEngine(dockerConnectionFromEnv(process.env)),
  registry: await openRegistry(loaded.manifest.publish.registry, { redactor }),
  sink: silentSink,
  redactor,
  clock: () => new Date(),
  timeouts: DEFAULT_TIMEOUTS,
};
const { built } = await publishPlan(
  loaded,
  plan,
  { buildkit: builder === 'buildkit', noCache: cache === 'no-cache' },
  ports,
);
process.stdout.write(`${JSON.stringify({ built: Object.keys(built) })}\n`);
