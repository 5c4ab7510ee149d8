import { describe, expect, it } from 'vitest';
import {
  fmtKb,
  fmtMs,
  markdownTable,
  median,
  README_BEGIN,
  README_END,
  ratio,
  replaceReadmeBlock,
  resultsTable,
  spread,
} from './stats.js';

describe('bench statistics', () => {
  it('takes the median of odd and even sample sets, NaN for none', () => {
    expect([median([3, 1, 2]), median([4, 1, 3, 2]), median([])]).toEqual([2, 2.5, Number.NaN]);
  });

  it('reports the spread as min, max and range over the median', () => {
    expect(spread([90, 100, 110])).toEqual({ min: 90, max: 110, relative: 0.2 });
  });

  it('divides the peer by Slipway, NaN when a side is missing', () => {
    expect([ratio(300, 200), ratio(100, 300), ratio(Number.NaN, 1), ratio(1, 0)]).toEqual([
      1.5,
      0.33,
      Number.NaN,
      Number.NaN,
    ]);
  });

  it('formats times and sizes', () => {
    expect([fmtMs(1.234), fmtMs(45.67), fmtMs(456.7), fmtMs(12_345), fmtMs(null)]).toEqual([
      '1.23 ms',
      '45.7 ms',
      '457 ms',
      '12.3 s',
      'n/a',
    ]);
    expect([fmtKb(512), fmtKb(20 * 1024), fmtKb(null)]).toEqual(['512 KiB', '20 MiB', 'n/a']);
  });
});

describe('bench tables', () => {
  it('renders a Markdown table with escaped cells and aligned columns', () => {
    expect(markdownTable(['a', 'b'], [['x|y', '1']], new Set([1]))).toBe(
      '| a | b |\n| --- | ---: |\n| x\\|y | 1 |',
    );
  });

  it('renders measured rows and says why a row did not run', () => {
    const side = (label: string, ms: number) => ({
      label,
      does: '',
      samplesMs: [ms],
      medianMs: ms,
      spread: spread([ms * 0.9, ms, ms * 1.1]),
      peakRssKb: 2048,
    });
    const table = resultsTable([
      {
        id: '1',
        group: 'g',
        title: 'ok row',
        status: 'ok',
        slipway: side('s', 100),
        peer: side('p', 250),
        ratio: 2.5,
      },
      { id: '2', group: 'g', title: 'later', status: 'not-available', reason: 'issue 13' },
    ]);
    expect(table.split('\n').slice(2)).toEqual([
      '| 1 | ok row | s | 100 ms | ±10% | p | 250 ms | ±10% | 2.50x | 2048 KiB | 2048 KiB |',
      '| 2 | later | not available in this build: issue 13 |  |  |  |  |  |  |  |  |',
    ]);
  });

  it('rewrites only the README block between the markers', () => {
    const readme = `intro\n${README_BEGIN}\nold\n${README_END}\noutro\n`;
    expect(replaceReadmeBlock(readme, 'new table')).toBe(
      `intro\n${README_BEGIN}\nnew table\n${README_END}\noutro\n`,
    );
    expect(() => replaceReadmeBlock('no markers', 'x')).toThrow(/markers/);
  });
});
