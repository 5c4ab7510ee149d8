import { describe, expect, it } from 'vitest';
import type { SlipwayEvent } from '../../core/events.js';
import { ndjsonRenderer, plainRenderer } from './plain.js';
import { chooseRenderer } from './renderer.js';

describe('chooseRenderer', () => {
  it('is live only on an interactive terminal outside CI that can redraw', () => {
    const cases = [
      { logFormat: 'plain', ci: false, tty: true, term: 'xterm-256color' },
      { logFormat: 'plain', ci: true, tty: true, term: 'xterm-256color' },
      { logFormat: 'plain', ci: false, tty: false, term: 'xterm-256color' },
      { logFormat: 'plain', ci: false, tty: true, term: 'dumb' },
      { logFormat: 'ndjson', ci: false, tty: true, term: 'xterm' },
      { logFormat: 'ndjson', ci: true, tty: false, term: undefined },
    ] as const;
    expect(cases.map((c) => chooseRenderer(c))).toEqual([
      'live',
      'plain',
      'plain',
      'plain',
      'ndjson',
      'ndjson',
    ]);
  });
});

const events: SlipwayEvent[] = [
  { kind: 'step-start', stage: 'build', subject: 'platform', message: 'building platform' },
  { kind: 'output', stage: 'build', subject: 'platform', line: 'Step 1/3 : FROM busybox' },
  {
    kind: 'progress',
    stage: 'push',
    subject: 'platform',
    id: 'abc123',
    status: 'Pushing',
    current: 5,
    total: 10,
  },
  { kind: 'log', stage: 'push', level: 'warn', subject: 'platform', message: 'careful with token-xyz' },
  { kind: 'step-done', stage: 'push', subject: 'platform', message: 'r@sha256:1', skipped: true },
  { kind: 'step-failed', stage: 'smoke', subject: 'agent', message: 'not ready' },
];

describe('plainRenderer', () => {
  it('writes one UTC-timestamped, redacted line per event, leaves layer progress out, and diagnostics as they are', () => {
    const out: string[] = [];
    const r = plainRenderer(
      (t) => out.push(t),
      (t) => t.replaceAll('token-xyz', '***'),
      () => new Date('2026-05-01T08:40:12.345Z'),
    );
    for (const e of events) r.event(e);
    r.line('error: token-xyz refused');
    expect(out).toEqual([
      '2026-05-01T08:40:12.345Z [build] platform building platform\n',
      '2026-05-01T08:40:12.345Z [build] platform | Step 1/3 : FROM busybox\n',
      '2026-05-01T08:40:12.345Z [push] platform warn: careful with ***\n',
      '2026-05-01T08:40:12.345Z [push] platform skipped: r@sha256:1\n',
      '2026-05-01T08:40:12.345Z [smoke] agent FAILED: not ready\n',
      'error: *** refused\n',
    ]);
  });
});

describe('ndjsonRenderer', () => {
  it('writes every event but layer progress as one JSON document, unchanged', () => {
    const out: string[] = [];
    const r = ndjsonRenderer(
      (t) => out.push(t),
      (t) => t,
    );
    for (const e of events) r.event(e);
    expect(out.map((l) => JSON.parse(l))).toEqual(events.filter((e) => e.kind !== 'progress'));
  });
});
