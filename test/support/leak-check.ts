/**
 * vitest globalSetup: gives the run a private temp directory (so concurrent runs on this machine
 * cannot be mistaken for ours) and fails the run when, after the suite, it still holds
 * `slipway-*` entries, or when containers or volumes labelled by Slipway created during the run
 * are still there.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';

/** Containers and volumes Slipway's smoke runs create carry this label (src/smoke/run.ts SMOKE_LABEL). */
const SLIPWAY_LABEL = 'dev.slipway.smoke';

let privateTmp: string | undefined;
let startedAt = 0;
let previousTmp: string | undefined;

/** Labelled containers and volumes created at or after `since` (ms), by id or name. */
async function leftovers(since: number): Promise<string[]> {
  const docker = new Docker();
  try {
    const containers = await docker.listContainers({ all: true, filters: { label: [SLIPWAY_LABEL] } });
    const volumes = (await docker.listVolumes({ filters: { label: [SLIPWAY_LABEL] } })).Volumes ?? [];
    return [
      ...containers
        .filter((c) => c.Created * 1000 >= since - 1000)
        .map((c) => `container ${c.Names[0] ?? c.Id} (${c.State})`),
      ...volumes
        .filter((v) => Date.parse((v as { CreatedAt?: string }).CreatedAt ?? '') >= since - 1000)
        .map((v) => `volume ${v.Name}`),
    ];
  } catch {
    // No engine: the tests that need it were skipped or failed on their own.
    return [];
  }
}

/** Before the suite: a private TMPDIR the test workers inherit. */
export function setup(): void {
  startedAt = Date.now();
  previousTmp = process.env.TMPDIR;
  privateTmp = mkdtempSync(path.join(tmpdir(), 'slipway-suite-'));
  process.env.TMPDIR = privateTmp;
}

/** After the suite: nothing of ours may remain. */
export async function teardown(): Promise<void> {
  const problems: string[] = [];
  if (privateTmp) {
    const left = readdirSync(privateTmp).filter((n) => n.startsWith('slipway-'));
    if (left.length > 0) problems.push(`temp dirs left behind: ${left.sort().join(', ')}`);
    rmSync(privateTmp, { recursive: true, force: true });
  }
  if (previousTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previousTmp;
  let docker = await leftovers(startedAt);
  // Another run on this machine may be between creating and removing its own: look again.
  if (docker.length > 0) {
    await new Promise((r) => setTimeout(r, 5_000));
    docker = (await leftovers(startedAt)).filter((d) => docker.includes(d));
  }
  if (docker.length > 0) problems.push(`Slipway-labelled ${docker.join(', ')}`);
  if (problems.length > 0) {
    // vitest reports a throwing teardown but keeps exit code 0: set the failure ourselves.
    process.exitCode = 1;
    throw new Error(`the test suite left things behind:\n  ${problems.join('\n  ')}`);
  }
}
