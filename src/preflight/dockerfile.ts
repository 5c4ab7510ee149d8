import { createRequire } from 'node:module';
import type * as DockerfileAst from 'dockerfile-ast';
import type { Instruction } from 'dockerfile-ast';

// dockerfile-ast (CommonJS) loads when the first Dockerfile is read, not when the CLI starts.
const requireHere = createRequire(import.meta.url);
let astModule: typeof DockerfileAst | undefined;
const ast = (): typeof DockerfileAst => {
  astModule ??= requireHere('dockerfile-ast') as typeof DockerfileAst;
  return astModule;
};

/**
 * The parts of a Dockerfile preflight and the build care about, read with `dockerfile-ast`:
 * global ARGs, FROMs, and the sources of every COPY/ADD with variables already substituted the
 * way the builder does (build args over ARG defaults; in a stage only its own ARG/ENV are visible).
 * https://docs.docker.com/reference/dockerfile/#understand-how-arg-and-from-interact
 */

/** A FROM instruction. */
export interface FromLine {
  /** 1-based line. */
  readonly line: number;
  /** The image argument as written (e.g. `${BASE_IMAGE}`). */
  readonly raw: string;
  /** After substituting global ARGs and build args; empty when it resolves to nothing. */
  readonly image: string;
  /** `AS <name>`, lowercased, or null. */
  readonly stage: string | null;
}

/** One source of a COPY/ADD that reads the build context. */
export interface CopySource {
  readonly line: number;
  readonly instruction: 'COPY' | 'ADD';
  /** As written. */
  readonly raw: string;
  /** After variable substitution. */
  readonly path: string;
}

/** A problem found while reading the Dockerfile itself. */
export interface DockerfileProblem {
  readonly line: number;
  readonly message: string;
  readonly hint?: string;
}

/** What {@link analyzeDockerfile} found. */
export interface DockerfileInfo {
  /** ARGs declared before the first FROM, with the 1-based line of their declaration. */
  readonly globalArgs: ReadonlyMap<string, { line: number; value: string | undefined }>;
  readonly froms: readonly FromLine[];
  /** COPY/ADD sources read from the context (`--from` copies, URLs and heredocs left out). */
  readonly sources: readonly CopySource[];
  readonly problems: readonly DockerfileProblem[];
}

type Lookup = (name: string) => string | undefined;

/** Substitutes `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`; `\$` stays literal. */
export function expandVariables(word: string, lookup: Lookup): string {
  return word.replace(
    /\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (
      m,
      braced: string | undefined,
      op: string | undefined,
      alt: string | undefined,
      bare: string | undefined,
    ) => {
      if (m === '\\$') return '$';
      const value = lookup((braced ?? bare) as string);
      switch (op) {
        case ':-':
          return value ? value : (alt ?? '');
        case '-':
          return value !== undefined ? value : (alt ?? '');
        case ':+':
          return value ? (alt ?? '') : '';
        case '+':
          return value !== undefined ? (alt ?? '') : '';
        default:
          return value ?? '';
      }
    },
  );
}

/** True when a source or FROM argument names the `BASE_IMAGE` variable. */
export function referencesBaseImage(word: string): boolean {
  return /\$\{?BASE_IMAGE\b/.test(word);
}

const unquote = (s: string) =>
  s.length >= 2 && (s[0] === '"' || s[0] === "'") && s[s.length - 1] === s[0] ? s.slice(1, -1) : s;

/** The arguments of a COPY/ADD after its flags, honouring the JSON (exec) form. */
function copyArguments(ins: Instruction): string[] | null {
  const content = ins.getArgumentsContent();
  if (ins instanceof ast().JSONInstruction && content?.trimStart().startsWith('[')) {
    // dockerfile-ast drops spaces inside JSON strings; parse the text instead.
    try {
      const parsed: unknown = JSON.parse(content);
      if (Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')) return parsed as string[];
    } catch {
      return null;
    }
    return null;
  }
  return ins.getArguments().map((a) => unquote(a.getValue()));
}

/** Parses Dockerfile text; `buildArgs` are the values the build will pass (`--build-arg`). */
export function analyzeDockerfile(text: string, buildArgs: Readonly<Record<string, string>>): DockerfileInfo {
  const df = ast().DockerfileParser.parse(text);
  const globalArgs = new Map<string, { line: number; value: string | undefined }>();
  const froms: FromLine[] = [];
  const sources: CopySource[] = [];
  const problems: DockerfileProblem[] = [];
  let scope: Map<string, string | undefined> | null = null;
  const has = (name: string) => Object.hasOwn(buildArgs, name);

  for (const ins of df.getInstructions()) {
    const line = ins.getRange().start.line + 1;
    const keyword = ins.getKeyword();
    const stageScope = scope;
    const lookup: Lookup = stageScope ? (n) => stageScope.get(n) : (n) => globalArgs.get(n)?.value;
    if (ins instanceof ast().Arg) {
      for (const prop of ins.getProperties()) {
        const name = prop.getName();
        const def = prop.getValue();
        let value: string | undefined;
        if (has(name)) value = buildArgs[name];
        else if (def !== null) value = expandVariables(unquote(def), lookup);
        // Inside a stage a bare `ARG X` re-exposes the global value.
        else if (stageScope) value = globalArgs.get(name)?.value;
        if (stageScope) stageScope.set(name, value);
        else if (!globalArgs.has(name)) globalArgs.set(name, { line, value });
      }
    } else if (ins instanceof ast().Env && stageScope) {
      for (const prop of ins.getProperties()) {
        stageScope.set(prop.getName(), expandVariables(unquote(prop.getValue() ?? ''), lookup));
      }
    } else if (keyword === 'FROM') {
      const args = ins.getArguments().map((a) => a.getValue());
      const raw = args[0] ?? '';
      const stage =
        args.length >= 3 && args[1]?.toUpperCase() === 'AS' ? (args[2] ?? '').toLowerCase() : null;
      froms.push({ line, raw, image: expandVariables(raw, (n) => globalArgs.get(n)?.value), stage });
      scope = new Map();
    } else if (keyword === 'COPY' || keyword === 'ADD') {
      if (ins instanceof ast().ModifiableInstruction && ins.getFlags().some((f) => f.getName() === 'from'))
        continue;
      const args = copyArguments(ins);
      if (args === null || args.length < 2) {
        problems.push({
          line,
          message: `${keyword} needs at least one source and a destination`,
          hint: `write ${keyword} <src>... <dest> or ${keyword} ["<src>", ..., "<dest>"]`,
        });
        continue;
      }
      for (const raw of args.slice(0, -1)) {
        if (raw.startsWith('<<')) continue; // a heredoc, not a context path
        if (keyword === 'ADD' && /^(https?:\/\/|git@|git:\/\/)/.test(raw)) continue;
        sources.push({ line, instruction: keyword, raw, path: expandVariables(raw, lookup) });
      }
    }
  }
  return { globalArgs, froms, sources, problems };
}
