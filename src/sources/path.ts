import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SlipwayError } from '../core/errors.js';
import type { SourceContext, TreeSource } from './source.js';
import { materialise } from './tree.js';

/** A local directory source as written in the manifest. */
export interface PathSourceSpec {
  readonly path: string;
}

/** A local directory, copied as it is (development only: not pinned, never cached). */
export class PathTemplateSource implements TreeSource {
  readonly kind = 'path' as const;
  readonly identity: string;
  readonly description: string;
  readonly subdir = '';
  readonly cacheable = false;
  private readonly dir: string;

  constructor(
    spec: PathSourceSpec,
    private readonly ctx: SourceContext,
  ) {
    this.dir = path.resolve(ctx.manifestDir, spec.path);
    this.identity = `path:${this.dir}`;
    this.description = `path ${spec.path}`;
  }

  async fetchTree(_ref: string | null, dest: string): Promise<void> {
    const st = await stat(this.dir).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new SlipwayError(
        'SOURCE_FETCH_FAILED',
        `template "${this.ctx.subject}": ${this.dir} is not a directory`,
        { resource: this.description, hint: 'fix the template\'s "path" (it is relative to the manifest)' },
      );
    }
    // The same walk staging uses: drops .git, refuses special files and escaping symlinks.
    // Credential checks run when the copy is staged, with the template's allowSensitive.
    await materialise(this.dir, dest, { subject: this.ctx.subject, sensitive: 'ignore' });
  }

  async commitExists(): Promise<boolean> {
    // A directory has no commits; verify --remote has nothing to check for it.
    return true;
  }
}
