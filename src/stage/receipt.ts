/**
 * The staging receipt, `staged.lock.json`: what was staged, from where, at which commit, with
 * which content digest. Build labels, the plan and smoke's content match all read it.
 */

/** One staged template. */
export interface StagedTemplate {
  readonly name: string;
  /** The source, described without credentials (e.g. `git file:///srv/t.git#subdir`). */
  readonly source: string;
  /** The pinned commit (40 hex), or null for a local `path` source. */
  readonly ref: string | null;
  /** Tree digest of the staged directory (see core/tree-digest.ts). */
  readonly digest: string;
  readonly files: number;
  readonly bytes: number;
  /** The staged directory, relative to the manifest's directory. */
  readonly dir: string;
}

/** The whole receipt. */
export interface StagingReceipt {
  readonly version: 1;
  /** The staging directory, relative to the manifest's directory. */
  readonly stagingDir: string;
  /** Staged templates by name, sorted by name. */
  readonly templates: Readonly<Record<string, StagedTemplate>>;
}

/** The receipt's file name, written next to the staged templates' parent (the manifest dir). */
export const RECEIPT_FILE = 'staged.lock.json';
