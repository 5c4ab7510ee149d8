/** Template sources: the TreeSource port, its git/archive/path implementations, safe extraction and staging of trees. */
export * from './archive-api.js';
export * from './extract.js';
export * from './git.js';
export * from './path.js';
export * from './remote-check.js';
export * from './rules.js';
export type * from './source.js';
export * from './source-for.js';
export * from './tree.js';
