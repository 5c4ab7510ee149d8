import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { isSlipwayError, SlipwayError } from '../core/errors.js';
import { Cli, type CliIO } from './cli.js';
import { commands } from './commands/index.js';
import { timeoutsOf } from './timeouts.js';
import { slipwayVersion } from './version.js';

/** Builds the commander program with every command registered. */
export function buildProgram(io: CliIO): { program: Command; cli: Cli } {
  const program = new Command('slipway');
  const cli = new Cli(program, io);
  program
    .description('Build, publish, verify and promote pinned container images from manifest.json.')
    .version(slipwayVersion(), '-V, --version', 'print the Slipway version')
    .option('-m, --manifest <path>', 'the manifest file', 'manifest.json')
    .option('--json', 'print one JSON document on stdout (logs stay on stderr)', false)
    .addOption(
      new Option('--log-format <format>', 'how progress is written to stderr')
        .choices(['plain', 'ndjson'])
        .default('plain'),
    )
    .option('-v, --verbose', 'show debug logs', false)
    .option(
      '--timeout <duration>',
      'limit per remote request, e.g. 30s or 2m; each retried operation gets twice that (default 30s, or $SLIPWAY_TIMEOUT)',
    )
    .showHelpAfterError('(run slipway --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
    });
  for (const register of commands) register(program, cli);
  // A bad --timeout / SLIPWAY_TIMEOUT is a usage error before any work starts.
  program.hook('preAction', () => void timeoutsOf(cli));
  // Commander's subcommands inherit exitOverride/output only when set before they are added,
  // so apply them to every command at every depth (e.g. `pins promote`).
  const route = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });
      route(sub);
    }
  };
  route(program);
  return { program, cli };
}

// Global options that take a value: their value is not the command name.
const GLOBAL_VALUE_OPTIONS = new Set(['-m', '--manifest', '--log-format', '--timeout']);

/**
 * `slipway help pins promote` as `slipway pins promote --help`: commander's own help command
 * looks one level down only, so a nested command's usage would otherwise show its parent's.
 */
export function helpAsFlag(argv: readonly string[]): string[] {
  let i = 0;
  while (i < argv.length && argv[i]?.startsWith('-')) i += GLOBAL_VALUE_OPTIONS.has(argv[i] ?? '') ? 2 : 1;
  if (argv[i] !== 'help' || argv.length - i < 3) return [...argv];
  return [...argv.slice(0, i), ...argv.slice(i + 1), '--help'];
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed or refused, 2 usage, 3 service unreachable). */
export async function main(argv: readonly string[], io?: Partial<CliIO>): Promise<number> {
  const fullIO: CliIO = {
    stdout: io?.stdout ?? ((s) => process.stdout.write(s)),
    stderr: io?.stderr ?? ((s) => process.stderr.write(s)),
    env: io?.env ?? process.env,
    cwd: io?.cwd ?? process.cwd(),
    ...(io?.signal ? { signal: io.signal } : {}),
    // Live progress only on the process's own stderr, and only when a person watches it.
    ...(io?.terminal ? { terminal: io.terminal } : {}),
    ...(!io?.stderr && process.stderr.isTTY ? { terminal: process.stderr } : {}),
  };
  const { program, cli } = buildProgram(fullIO);
  try {
    await cli.prepare();
    return await run(program, cli, argv, fullIO);
  } finally {
    cli.closeOutput();
  }
}

async function run(program: Command, cli: Cli, argv: readonly string[], fullIO: CliIO): Promise<number> {
  try {
    await program.parseAsync(helpAsFlag(argv), { from: 'user' });
    cli.actions?.finish(commandName(program, argv), cli.exitCode);
    return cli.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (isSlipwayError(err)) {
      cli.actions?.endGroup();
      reportError(cli, err);
      cli.actions?.finish(commandName(program, argv), err.exitCode, err);
      return err.exitCode;
    }
    // An unexpected error is a Slipway bug: say so, show the stack only when asked.
    const e = err instanceof Error ? err : new Error(String(err));
    cli.log(`error: unexpected: ${e.message}`);
    cli.log(
      fullIO.env.SLIPWAY_DEBUG
        ? (e.stack ?? '')
        : 'hint: this is a bug in slipway; rerun with SLIPWAY_DEBUG=1 for a stack trace and report it',
    );
    if (cli.globals.json) cli.print({ ok: false, error: { code: 'INTERNAL', message: e.message } }, []);
    cli.actions?.finish(commandName(program, argv), 1);
    return 1;
  }
}

/** `release`, `pins promote`: the command words of argv, for the job summary. */
function commandName(program: Command, argv: readonly string[]): string {
  const words: string[] = [];
  let cmd: Command | undefined = program;
  for (const arg of argv) {
    const sub: Command | undefined = cmd?.commands.find((c) => c.name() === arg);
    if (!sub) continue;
    words.push(arg);
    cmd = sub;
  }
  return words.join(' ') || 'slipway';
}

function reportError(cli: Cli, err: SlipwayError): void {
  cli.log(`error: ${err.message}`);
  // Details already inside the message (manifest problems) are not repeated.
  for (const d of err.details) {
    if (!err.message.includes(d.message))
      cli.log(`  ${d.at}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ''}`);
  }
  if (err.hint) cli.log(`hint: ${err.hint}`);
  if (cli.globals.json) cli.print({ ok: false, error: err.toJSON() }, []);
}

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Runs the CLI as a process (bin/slipway.js, or `tsx src/cli/main.ts`). SIGINT and SIGTERM abort
 * the running command, which cleans up what it created (smoke containers and volumes) and leaves
 * moving tags and pins as they were; the process then exits 130 or 143. A second signal exits at once.
 */
export async function runProcess(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const controller = new AbortController();
  let received: keyof typeof SIGNAL_NUMBERS | undefined;
  const onSignal = (sig: keyof typeof SIGNAL_NUMBERS) => {
    if (received !== undefined) process.exit(128 + SIGNAL_NUMBERS[sig]);
    received = sig;
    process.stderr.write(`slipway: ${sig}: stopping and cleaning up (send it again to exit at once)\n`);
    controller.abort(
      new SlipwayError('INTERRUPTED', `interrupted by ${sig}`, {
        hint: 'nothing half-changed was left: moving tags and pins move only at the end of a run',
      }),
    );
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const h = () => onSignal(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    const code = await main(argv, { signal: controller.signal });
    return received === undefined ? code : 128 + SIGNAL_NUMBERS[received];
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

// Run when executed directly (`tsx src/cli/main.ts`); bin/slipway.js calls runProcess itself.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runProcess();
}

export { SlipwayError };
