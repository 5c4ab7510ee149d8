import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinFilePath, serializePinFile } from './file-store.js';
import { withSchema } from './open.js';
import { describePostgresUrl, translatePgError } from './postgres-store.js';

describe('pinFilePath', () => {
  it('resolves file: URLs against the base directory', () => {
    expect(pinFilePath('file:.slipway/pins.json', '/repo')).toBe(path.resolve('/repo/.slipway/pins.json'));
    expect(pinFilePath('file:/abs/pins.json', '/repo')).toBe('/abs/pins.json');
    expect(pinFilePath('file:///abs/pins.json', '/repo')).toBe('/abs/pins.json');
    expect(() => pinFilePath('file:', '/repo')).toThrow(/names no file/);
  });
});

describe('serializePinFile', () => {
  it('writes pins sorted by runtime, history by id, keys in a fixed order', () => {
    const pin = (runtime: string) => ({
      reason: null,
      updatedBy: 'ci',
      updatedAt: 'T',
      tag: null,
      digest: 'D',
      image: 'I',
      runtime,
    });
    const text = serializePinFile({
      version: 1,
      pins: { zeta: pin('zeta'), alpha: pin('alpha') },
      history: [],
      smokeRecords: [],
    });
    expect(text).toBe(
      `${JSON.stringify(
        {
          version: 1,
          pins: {
            alpha: {
              runtime: 'alpha',
              image: 'I',
              digest: 'D',
              tag: null,
              updatedAt: 'T',
              updatedBy: 'ci',
              reason: null,
            },
            zeta: {
              runtime: 'zeta',
              image: 'I',
              digest: 'D',
              tag: null,
              updatedAt: 'T',
              updatedBy: 'ci',
              reason: null,
            },
          },
          history: [],
          smokeRecords: [],
        },
        null,
        2,
      )}\n`,
    );
  });
});

describe('postgres URL handling', () => {
  it('describes a URL without credentials or query', () => {
    expect(describePostgresUrl('postgres://u:pw@db.example:5432/control?sslmode=require')).toBe(
      'postgres://db.example:5432/control',
    );
    expect(describePostgresUrl('postgres://u:pw@db:5432/x', 'pins')).toBe(
      'postgres://db:5432/x (schema pins)',
    );
  });

  it('takes ?schema= off the URL; an explicit option wins', () => {
    expect(withSchema('postgres://u:p@h:5432/db?schema=pins', {})).toEqual([
      'postgres://u:p@h:5432/db',
      { schema: 'pins' },
    ]);
    expect(withSchema('postgres://h/db?schema=a', { schema: 'b' })[1]).toEqual({ schema: 'b' });
  });

  it('maps pg errors to stable codes and never carries the password', () => {
    const url = 'postgres://app:s3cr%40t-pw@db:5432/control';
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const terminated = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    const conflict = Object.assign(new Error('duplicate key value violates unique constraint'), {
      code: '23505',
    });
    const echoed = new Error('password authentication failed: s3cr@t-pw');
    const cases = [
      refused,
      terminated,
      conflict,
      new Error('Connection terminated unexpectedly'),
      echoed,
    ].map((e) => translatePgError(e, url, 'doing it'));
    expect(cases.map((e) => e.code)).toEqual([
      'DATABASE_UNREACHABLE',
      'DATABASE_UNREACHABLE',
      'PIN_CONFLICT',
      'DATABASE_UNREACHABLE',
      'STORE_ERROR',
    ]);
    for (const e of cases) expect(JSON.stringify(e.toJSON())).not.toMatch(/s3cr/);
  });
});
