// Rows for features not on main yet, run only when the built CLI has them: cross-registry copy
// (issue 13, `pins promote --to-registry`) and the fresh-runner registry cache (issue 14).
import { type Group, plainRunner } from '../harness.js';
import { type BenchConfig, slipway } from './config.js';

async function help(config: BenchConfig, args: string[]): Promise<string> {
  const c = slipway(config, [...args, '--help']);
  const r = await plainRunner.run(c.cmd, c.args, { cwd: config.repo, allowFail: true });
  return r.stdout + r.stderr;
}

function pending(name: string, rows: Group['rows'], check: () => Promise<string | null>): Group {
  return {
    name,
    notes: [],
    variants: [],
    rows,
    unavailable: check,
    async setup() {
      throw new Error(`${name}: the feature is in this build, but its bench scenario is not written yet`);
    },
    async teardown() {},
  };
}

/** Cross-registry copy against `skopeo copy` between two registries; needs `pins promote --to-registry`. */
export function crossRegistryGroup(config: BenchConfig): Group {
  return pending(
    'cross-registry',
    [{ id: '5c', title: 'copy a 50 MB image to a second registry vs skopeo copy', slipway: '', peer: '' }],
    async () =>
      /--to-registry/.test(await help(config, ['pins', 'promote']))
        ? null
        : 'cross-registry copy (`pins promote --to-registry`, issue 13)',
  );
}

/** A one-template change rebuilt on an empty engine with and without the registry cache; needs issue 14. */
export function freshRunnerGroup(config: BenchConfig): Group {
  return pending(
    'fresh-runner',
    [
      {
        id: '10',
        title: 'fresh runner: one template changed, with vs without the registry cache',
        slipway: '',
        peer: '',
      },
    ],
    async () =>
      /cache-from|registry cache/i.test(await help(config, ['build']))
        ? null
        : 'registry build cache on a fresh runner (issue 14)',
  );
}
