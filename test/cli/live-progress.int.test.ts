/**
 * Live progress on an interactive terminal: the real CLI runs `stage` and `push` inside a tmux
 * pane (a real pseudo-terminal), on a tmux server of its own that the test kills afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/publish/open.js';
import { type TempProject, tempProject } from '../support/project.js';
import { registryAddr, requireServices } from '../support/services.js';
import { makeTempDir } from '../support/temp.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const run = randomBytes(4).toString('hex');
const prefix = `slipway-test/live-${run}`;
// A tmux server of its own on a socket in a temp dir: nothing of the user's sessions is touched,
// kill-server ends it all, and the socket goes with the temp dir.
const socket = path.join(makeTempDir('tmux'), 'socket');
const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
let project: TempProject;

beforeAll(async () => {
  await requireServices(['docker', 'registry', 'rootImage']);
  project = tempProject(prefix);
  project.writeManifest();
});

afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
  project?.remove();
  // The images this run built (labelled with its repositories); pushed registry data stays under slipway-test/.
  const docker = new Docker();
  for (const image of await docker.listImages()) {
    if ((image.RepoTags ?? []).some((t) => t.includes(prefix))) {
      await docker
        .getImage(image.Id)
        .remove({ force: true })
        .catch(() => {});
    }
  }
});

/** The visible screen of the pane. */
function screen(): string {
  return tmux('capture-pane', '-p', '-J', '-t', 'live');
}

describe('live progress on a terminal', () => {
  it('draws steps, layers and spinners in place, keeps finished steps, and no timestamps', async () => {
    const raw = path.join(makeTempDir('live'), 'pane.raw');
    const sha = randomBytes(20).toString('hex');
    const cli = `${path.join(repoRoot, 'node_modules/.bin/tsx')} ${path.join(repoRoot, 'src/cli/main.ts')}`;
    const script = [
      `cd ${project.dir}`,
      `${cli} stage`,
      `${cli} push --registry oci://${registryAddr} --env live --sha ${sha}`,
    ].join(' && ');
    // A clean environment: not CI, a terminal that can redraw. The pane waits a second so pipe-pane records from the start.
    const env = `env -i PATH=${process.env.PATH} HOME=${process.env.HOME} TERM=xterm-256color`;
    tmux(
      'new-session',
      '-d',
      '-s',
      'live',
      '-x',
      '160',
      '-y',
      '50',
      `${env} sh -c 'sleep 1; ${script}; echo "slipway exited $?"; sleep 600'`,
    );
    tmux('pipe-pane', '-t', 'live', '-o', `cat >> ${raw}`);

    const deadline = Date.now() + 200_000;
    while (!screen().includes('slipway exited')) {
      if (Date.now() > deadline) throw new Error(`the CLI did not finish; the screen:\n${screen()}`);
      await sleep(250);
    }
    const final = screen();
    expect(final).toContain('slipway exited 0');
    // Finished steps stay on screen with a mark and their duration; no spinner is left behind.
    expect(final).toMatch(/✔ \[build\] platform ok: .*\(\d+\.\ds\)/);
    expect(final).toMatch(
      /✔ \[push\] platform ok: .*platform:live-[0-9a-f]{40}@sha256:[0-9a-f]{64} \(\d+\.\ds\)/,
    );
    expect(final).toMatch(/✔ \[push\] platform-agent ok: /);
    expect(final).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[/);
    // On a terminal, lines are not timestamped (plain output in CI and pipes is).
    expect(final).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    // stdout (the result lines) is on the same terminal, after the frame was cleared.
    expect(final).toMatch(new RegExp(`${registryAddr}/${prefix}/platform:live-latest@sha256:`));

    // The bytes written show the frame redrawn in place: a spinner line for a step under way,
    // per-layer push lines, and log-update's erase-line sequences.
    const bytes = readFileSync(raw, 'utf8');
    expect(bytes).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[build\] platform /);
    expect(bytes).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \[push\] platform pushing /);
    expect(bytes).toMatch(
      /\n {4}[0-9a-f]{12} (Pushed|Layer already exists|Mounted from \S+|Pushing|Preparing|Waiting)/,
    );
    expect(bytes).toContain('\u001b[2K');

    const registry = await openRegistry(`oci://${registryAddr}`);
    expect(await registry.resolve(`${prefix}/platform`, `live-${sha}`)).toMatch(/^sha256:/);
  });
});
