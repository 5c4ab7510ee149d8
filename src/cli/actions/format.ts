/**
 * The two documented Actions formats Slipway writes, as @actions/core writes them:
 * - file commands (`$GITHUB_OUTPUT`): `name<<ghadelimiter_<uuid>` EOL value EOL delimiter EOL;
 * - workflow commands (`::error file=F,line=L::message`), with core's escaping.
 * @actions/core's own setOutput/error read `process.env` and write `process.stdout`; the CLI takes its
 * environment and streams injected (CliIO), so it renders the same bytes here and writes them itself.
 * https://docs.github.com/actions/reference/workflows-and-actions/workflow-commands
 */
import { randomUUID } from 'node:crypto';
import { EOL } from 'node:os';

/** One `$GITHUB_OUTPUT` entry in the multiline (heredoc) form, safe for any value. */
export function formatOutput(name: string, value: string): string {
  let delimiter = `ghadelimiter_${randomUUID()}`;
  // A value cannot realistically contain a fresh UUID, but never let it close the heredoc early.
  while (value.includes(delimiter) || name.includes(delimiter)) delimiter = `ghadelimiter_${randomUUID()}`;
  return `${name}<<${delimiter}${EOL}${value}${EOL}${delimiter}${EOL}`;
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** Where an annotation points (GitHub shows it on that line of the file in the run and the diff). */
export interface AnnotationProperties {
  readonly title?: string;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
}

/** A workflow command line (`::name k=v,k=v::message`), escaped as @actions/core does. */
export function formatCommand(
  name: 'error' | 'warning' | 'notice' | 'group' | 'endgroup',
  message: string,
  properties: AnnotationProperties = {},
): string {
  const props = Object.entries(properties)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  return `::${name}${props ? ` ${props}` : ''}::${escapeData(message)}`;
}
