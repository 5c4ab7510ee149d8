import { SlipwayError } from '../core/errors.js';

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses `--max-age` (`30d`, `12h`, `90m`, `2w`, `45s`, or a sum like `1d12h`) into seconds; USAGE error otherwise. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+)\s*([smhdw])/g)];
  const consumed = parts.map((p) => p[0]).join('');
  if (parts.length === 0 || consumed.replace(/\s/g, '') !== trimmed.replace(/\s/g, '')) {
    throw new SlipwayError('USAGE', `invalid duration "${text}"`, {
      resource: text,
      hint: 'use a number with a unit: 30d, 12h, 90m, 2w or 45s (or a sum such as 1d12h)',
    });
  }
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] ?? 's'] ?? 1), 0);
  if (seconds <= 0) {
    throw new SlipwayError('USAGE', `duration "${text}" must be longer than zero`, { resource: text });
  }
  return seconds;
}
