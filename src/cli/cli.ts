import path from 'node:path';
import type { Command } from 'commander';
import type { OpenedPorts, PortRequest } from '../app/open-ports.js';
import { readSettings, type Settings } from '../app/settings.js';
import { SlipwayError } from '../core/errors.js';
import type { EventSink, SlipwayEvent } from '../core/events.js';
import { Redactor } from '../core/redact.js';
import type { LoadedManifest } from '../manifest/load.js';
import { ActionsReporter, inActions } from './actions/reporter.js';
import type { liveRenderer } from './render/live.js';
import { openRenderer } from './render/open.js';
import { chooseRenderer, type Renderer } from './render/renderer.js';
import { timeoutsOf } from './timeouts.js';

/** Where the CLI writes and what it reads from its process; injectable so tests run it in-process. */
export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Aborted on SIGINT/SIGTERM so long operations clean up (e.g. smoke removes its container). */
  readonly signal?: AbortSignal;
  /**
   * stderr as a stream, given only when it is an interactive terminal: live progress is drawn on
   * it (outside CI). Without it progress is written as plain lines through `stderr`.
   */
  readonly terminal?: NodeJS.WritableStream;
}

/** Global options every command sees. */
export interface GlobalOptions {
  manifest: string;
  json: boolean;
  logFormat: 'plain' | 'ndjson';
  verbose: boolean;
}

/** What a command's action gets: parsed globals, the manifest loader, a sink, and printers. */
export class Cli {
  /** Exit code a command sets when it printed its own failure report (e.g. a failed smoke). */
  exitCode = 0;
  readonly redactor = new Redactor();
  /** Everything the CLI takes from its environment, read once (src/app/settings.ts). */
  readonly settings: Settings;
  /** Set when running as a GitHub/Gitea Actions step: outputs, job summary, annotations, log groups. */
  readonly actions: ActionsReporter | undefined;

  constructor(
    readonly program: Command,
    readonly io: CliIO,
  ) {
    this.settings = readSettings(io.env);
    // Tokens the process holds are scrubbed from everything the CLI prints.
    this.redactor.add(...this.settings.secrets);
    this.actions = inActions(io.env)
      ? new ActionsReporter(
          io.env,
          io.stderr,
          this.redactor,
          io.env.GITHUB_WORKSPACE ?? io.cwd,
          () => this.globals.logFormat === 'plain',
        )
      : undefined;
  }

  /**
   * Opens the ports a command needs through the composition root (src/app/open-ports.ts), runs
   * `fn` with them, and closes them, whatever happens.
   */
  async withPorts<R extends Omit<PortRequest, 'cwd' | 'sink' | 'redactor' | 'timeouts'>, T>(
    request: R,
    fn: (ports: OpenedPorts<R & PortRequest>) => Promise<T>,
  ): Promise<T> {
    // The composition root (and every adapter it can open) loads when a command first needs a port.
    const { withPorts } = await import('../app/open-ports.js');
    return withPorts(
      this.settings,
      { ...request, cwd: this.io.cwd, sink: this.sink, redactor: this.redactor, timeouts: timeoutsOf(this) },
      fn,
    );
  }

  /** The global options. */
  get globals(): GlobalOptions {
    const o = this.program.opts();
    return {
      manifest: (o.manifest as string | undefined) ?? 'manifest.json',
      json: Boolean(o.json),
      logFormat: o.logFormat === 'ndjson' ? 'ndjson' : 'plain',
      verbose: Boolean(o.verbose),
    };
  }

  /** Resolves a user-given path against the CLI's working directory. */
  resolve(p: string): string {
    return path.resolve(this.io.cwd, p);
  }

  /**
   * Loads the manifest named by --manifest and holds it to the pinning contract before any work,
   * so every command refuses a broken manifest with the message `verify` gives (exit 1).
   * `verify` itself passes `contract: false`: it reports the contract with the preflight, together.
   */
  async loadManifest(options: { contract?: boolean } = {}): Promise<LoadedManifest> {
    // The schema (zod) loads with the first manifest, not with the CLI: `tag --registry` reads none.
    const [{ loadManifest }, { assertContract }] = await Promise.all([
      import('../manifest/load.js'),
      import('../manifest/contract.js'),
    ]);
    const loaded = await loadManifest(this.globals.manifest, { cwd: this.io.cwd });
    if (options.contract !== false) {
      const report = assertContract(loaded, { strict: this.settings.ci });
      for (const w of report.warnings)
        this.log(`warning: ${w.at}: ${w.message}${w.hint ? ` (hint: ${w.hint})` : ''}`);
    }
    return loaded;
  }

  private chosen: Renderer | undefined;
  private live: typeof liveRenderer | undefined;

  /** Loads what only some runs need (live progress on a terminal, the Actions job summary) before any command runs. */
  async prepare(): Promise<void> {
    await this.actions?.prepare();
    if (this.io.terminal) this.live = (await import('./render/live.js')).liveRenderer;
  }

  /** How progress is shown (src/cli/render): chosen on first use, once the global options are parsed. */
  get renderer(): Renderer {
    this.chosen ??= openRenderer(
      chooseRenderer({
        logFormat: this.globals.logFormat,
        ci: this.settings.ci,
        tty: this.io.terminal !== undefined,
        term: this.io.env.TERM,
      }),
      this.io,
      (text) => this.redactor.redact(text),
      this.live,
    );
    return this.chosen;
  }

  /** Progress events rendered on stderr: live on a terminal, else plain timestamped lines, or NDJSON. */
  readonly sink: EventSink = (event: SlipwayEvent) => {
    if (event.kind === 'log' && event.level === 'debug' && !this.globals.verbose) return;
    if (event.kind !== 'progress') this.actions?.event(event);
    this.renderer.event(event);
  };

  /** Writes a diagnostic line to stderr (redacted). */
  log(line: string): void {
    this.renderer.line(line);
  }

  /** Ends live progress (the run is over); idempotent. */
  closeOutput(): void {
    this.chosen?.close();
  }

  /** Prints a command's result: one JSON document with --json, else the text form. */
  print(data: unknown, text: string | readonly string[]): void {
    this.actions?.record(data);
    this.chosen?.pause();
    if (this.globals.json) {
      this.io.stdout(`${this.redactor.redact(JSON.stringify(data, null, 2))}\n`);
    } else {
      const lines = typeof text === 'string' ? [text] : text;
      if (lines.length > 0) this.io.stdout(`${this.redactor.redact(lines.join('\n'))}\n`);
    }
  }

  /** Refuses `--flag` combinations and bad values as a usage error (exit 2). */
  usage(message: string, hint?: string): never {
    throw new SlipwayError('USAGE', message, hint === undefined ? {} : { hint });
  }
}

/** A command module: registers itself on the program. */
export type RegisterCommand = (program: Command, cli: Cli) => void;
