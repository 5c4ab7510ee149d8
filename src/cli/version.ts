import { readFileSync } from 'node:fs';

/** Slipway's version, from the package.json two levels above this file (src/cli, dist/cli or dist/cli-bundle). */
export function slipwayVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}
