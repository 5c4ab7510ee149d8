import { parseTimeouts, type Timeouts } from '../core/timeouts.js';
import type { Cli } from './cli.js';

/** The global `--timeout DURATION` (else `SLIPWAY_TIMEOUT`, else the defaults) as {@link Timeouts}. */
export function timeoutsOf(cli: Cli): Timeouts {
  const flag = cli.program.opts<{ timeout?: string }>().timeout;
  if (flag !== undefined) return parseTimeouts(flag, '--timeout');
  return parseTimeouts(cli.settings.timeout, 'SLIPWAY_TIMEOUT');
}
