import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_TIMEOUTS } from '../engine/image-engine.js';
import { engineTimeoutsOf, readSettings } from './settings.js';

describe('engineTimeoutsOf', () => {
  it('takes the defaults when nothing is set', () => {
    expect(engineTimeoutsOf(readSettings({}))).toEqual({
      idleMs: 60_000,
      totalMs: 1_800_000,
      callMs: 60_000,
    });
    expect(DEFAULT_ENGINE_TIMEOUTS).toEqual({ idleMs: 60_000, totalMs: 1_800_000, callMs: 60_000 });
  });

  it('reads the idle limit (also the call limit) and the deadline as durations', () => {
    const env = { SLIPWAY_ENGINE_IDLE_TIMEOUT: '1m30s', SLIPWAY_ENGINE_DEADLINE: '10m' };
    expect(engineTimeoutsOf(readSettings(env))).toEqual({ idleMs: 90_000, totalMs: 600_000, callMs: 90_000 });
  });

  it('refuses a malformed duration as a usage error naming the variable', () => {
    expect(() => engineTimeoutsOf(readSettings({ SLIPWAY_ENGINE_IDLE_TIMEOUT: 'soon' }))).toThrow(
      expect.objectContaining({
        code: 'USAGE',
        message: 'SLIPWAY_ENGINE_IDLE_TIMEOUT: "soon" is not a duration',
      }),
    );
  });
});
