import { SlipwayError } from '../core/errors.js';

/** The PIN_CONFLICT error a losing compare-and-set throws: the runtime, expected and actual digests, and a hint. */
export function pinConflict(
  runtime: string,
  expected: string | null,
  actual: string | null,
  store: string,
): SlipwayError {
  const show = (d: string | null) => (d === null ? '(no pin)' : d === '' ? '(a pin without digest)' : d);
  return new SlipwayError(
    'PIN_CONFLICT',
    `pin ${runtime} changed concurrently: expected ${show(expected)}, found ${show(actual)} in ${store}`,
    {
      resource: runtime,
      hint: `another promotion moved it first; check \`slipway pins history ${runtime}\`, then retry (with --expect ${actual ?? 'DIGEST'} if the new value is what you meant to replace)`,
    },
  );
}
