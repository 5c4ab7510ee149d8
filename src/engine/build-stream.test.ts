import { describe, expect, it } from 'vitest';
import { BuildLog } from './build-stream.js';

describe('BuildLog', () => {
  it('tracks the step, splits chunked lines, keeps the first error and the image ID', () => {
    const lines: string[] = [];
    const log = new BuildLog((l) => lines.push(l));
    log.push({ stream: 'Step 1/2 : FROM x' });
    log.push({ stream: '\n ---> abc\nStep 2/2 : RUN make\n' });
    log.push({ stream: 'partial ' });
    log.push({ stream: 'line\n' });
    log.push({
      error: 'The command returned a non-zero code: 2',
      errorDetail: { message: 'returned 2', code: 2 },
    });
    log.push({ error: 'later' });
    log.end();
    expect({ step: log.step, error: log.error, id: log.imageId, lines }).toEqual({
      step: 'Step 2/2 : RUN make',
      error: 'returned 2',
      id: null,
      lines: ['Step 1/2 : FROM x', ' ---> abc', 'Step 2/2 : RUN make', 'partial line'],
    });
  });

  it('reads the ID from aux and BuildKit lines, and keeps only the last 20 lines', () => {
    const log = new BuildLog();
    for (let i = 0; i < 30; i++) log.push({ stream: `line ${i}\n` });
    log.push({ stream: '[sha256:3f2a5] [2/3] COPY a /a\n' });
    log.push({ aux: { ID: `sha256:${'f'.repeat(64)}` } });
    expect([log.tail.length, log.tail[0], log.step, log.imageId]).toEqual([
      20,
      'line 11',
      '[2/3] COPY a /a',
      `sha256:${'f'.repeat(64)}`,
    ]);
  });
});
