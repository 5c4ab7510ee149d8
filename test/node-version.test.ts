import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// CI runs the suite a second time with Node 24 first on PATH (.ci/run sets SLIPWAY_EXPECT_NODE_MAJOR):
// this proves vitest really runs on that binary, not on another `node` the scripts happened to find.
describe('the Node running the suite', () => {
  it('is the `node` first on PATH, and the major CI asked for', () => {
    const onPath = execFileSync('node', ['--version'], { encoding: 'utf8' }).trim();
    expect(`v${process.versions.node}`).toBe(onPath);
    const expected = process.env.SLIPWAY_EXPECT_NODE_MAJOR;
    if (expected) expect(process.versions.node.split('.')[0]).toBe(expected);
  });
});
