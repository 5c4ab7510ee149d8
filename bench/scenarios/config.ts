import path from 'node:path';
import type { Command } from '../harness.js';
import type { Trash } from '../trash.js';

/** What every scenario group needs to know about the machine and this run. */
export interface BenchConfig {
  /** The repository root (holds manifest.json, bin/slipway.js, dist/). */
  readonly repo: string;
  /** Random hex naming this run's registry repositories, local tags and temp dirs. */
  readonly runId: string;
  /** host:port of the local OCI registry. */
  readonly registryAddr: string;
  /** The local root image every test image builds FROM. */
  readonly rootImage: string;
  /** `git rev-parse HEAD` of the repository. */
  readonly sha: string;
  /** Where generated workloads are cached (never committed). */
  readonly workloads: string;
  /** `git --exec-path` (holds git-http-backend). */
  readonly gitExecPath: string;
  /** The environment children run with. */
  readonly env: NodeJS.ProcessEnv;
  /** Where variants put what they leave behind: deleted after the last measurement (see bench/trash.ts). */
  readonly trash: Trash;
}

/** Every registry repository and local image of a run lives under this prefix. */
export function benchRepository(config: BenchConfig, name: string): string {
  return `slipway-bench/${config.runId}/${name}`;
}

/** The built CLI, as a user runs it: `node bin/slipway.js ARGS`. */
export function slipway(config: BenchConfig, args: readonly string[]): Command {
  return { cmd: process.execPath, args: [path.join(config.repo, 'bin', 'slipway.js'), ...args] };
}
