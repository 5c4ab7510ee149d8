/** Runs the Slipway CLI in-process, capturing what it writes: what a user would see, without a child process. */
import { main } from '../../src/cli/main.js';

/** Exit code and everything the CLI wrote. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `slipway ARGV` with the given working directory and environment (default: empty). */
export async function runCli(
  argv: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; onStderr?: (text: string) => void },
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
      options.onStderr?.(s);
    },
    cwd: options.cwd,
    env: options.env ?? {},
  });
  return { code, stdout, stderr };
}
