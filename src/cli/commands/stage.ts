import type { Command } from 'commander';
import type { Cli } from '../cli.js';

/** `slipway stage [--only NAME...] [--cache-dir DIR] [--no-cache]`: materialise the pinned templates. */
export function registerStage(program: Command, cli: Cli): void {
  program
    .command('stage')
    .description('stage every pinned template into the build context and write staged.lock.json')
    .option('--only <names...>', 'stage only these templates (the others keep their staged tree)')
    .option(
      '--cache-dir <dir>',
      'where fetched template trees are cached (default ~/.cache/slipway/templates)',
    )
    .option('--no-cache', 'fetch every template again and leave the cache untouched')
    .action(async (opts: { only?: string[]; cacheDir?: string; cache: boolean }) => {
      const loaded = await cli.loadManifest();
      const { stageTemplates } = await import('../../stage/stage.js');
      const receipt = await cli.withPorts({}, (ports) =>
        stageTemplates(loaded, {
          sources: ports.sources,
          env: cli.settings.env,
          sink: ports.sink,
          noCache: !opts.cache,
          ...(opts.only ? { only: opts.only } : {}),
          ...(opts.cacheDir ? { cacheDir: cli.resolve(opts.cacheDir) } : {}),
          ...(cli.io.signal ? { signal: cli.io.signal } : {}),
        }),
      );
      const rows = Object.values(receipt.templates).map((t) => [
        t.name,
        t.ref === null ? '(path)' : t.ref.slice(0, 12),
        t.digest.replace(/^sha256:/, '').slice(0, 12),
        String(t.files),
        String(t.bytes),
      ]);
      cli.print(receipt, table(['TEMPLATE', 'REF', 'DIGEST', 'FILES', 'BYTES'], rows));
    });
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}
