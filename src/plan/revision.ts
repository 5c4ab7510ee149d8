import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SlipwayError } from '../core/errors.js';
import { redactText } from '../core/redact.js';

const run = promisify(execFile);

/** The commit checked out in `dir` (`git rev-parse HEAD`); USAGE error with a hint when it is not a git checkout. */
export async function gitHead(dir: string): Promise<string> {
  try {
    const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd: dir, timeout: 15_000 });
    return stdout.trim();
  } catch {
    throw new SlipwayError(
      'USAGE',
      `cannot tell the source revision: ${dir} is not a git checkout with a commit`,
      {
        resource: dir,
        hint: 'pass --sha <40-hex commit>',
      },
    );
  }
}

/** The `origin` remote of the checkout in `dir` without credentials, or null. */
export async function gitSource(dir: string): Promise<string | null> {
  try {
    const { stdout } = await run('git', ['config', '--get', 'remote.origin.url'], {
      cwd: dir,
      timeout: 15_000,
    });
    const url = stdout.trim();
    // A remote URL can embed a token (https://x-access-token:...@github.com/...): never label an image with it.
    return url === '' ? null : redactText(url).replace(/\*\*\*@/, '');
  } catch {
    return null;
  }
}
