import type { Template } from '../manifest/schema.js';
import { ArchiveTemplateSource } from './archive-api.js';
import { GitTemplateSource } from './git.js';
import { PathTemplateSource } from './path.js';
import type { SourceContext, TreeSource } from './source.js';

/** Tokens given explicitly; each falls back to its environment variable. */
export interface SourceTokens {
  /** For http(s) git sources; default `SLIPWAY_GIT_TOKEN`. */
  readonly git?: string;
  /** Default `GITHUB_TOKEN`. */
  readonly github?: string;
  /** Default `GITEA_TOKEN`. */
  readonly gitea?: string;
}

/** The {@link TreeSource} for a manifest template, chosen by its source kind. */
export function sourceFor(template: Template, ctx: SourceContext, tokens: SourceTokens = {}): TreeSource {
  const s = template.source;
  if ('git' in s) {
    return new GitTemplateSource(s, ctx, tokens.git ?? (ctx.env.SLIPWAY_GIT_TOKEN || undefined));
  }
  if ('github' in s) {
    return new ArchiveTemplateSource(
      {
        forge: 'github',
        repo: s.github,
        ...(s.apiUrl ? { apiUrl: s.apiUrl } : {}),
        ...(s.subdir ? { subdir: s.subdir } : {}),
      },
      ctx,
      tokens.github ?? (ctx.env.GITHUB_TOKEN || undefined),
    );
  }
  if ('gitea' in s) {
    return new ArchiveTemplateSource(
      { forge: 'gitea', repo: s.gitea, apiUrl: s.apiUrl, ...(s.subdir ? { subdir: s.subdir } : {}) },
      ctx,
      tokens.gitea ?? (ctx.env.GITEA_TOKEN || undefined),
    );
  }
  return new PathTemplateSource(s, ctx);
}
