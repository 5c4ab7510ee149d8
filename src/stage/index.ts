/** Template staging and the template sources it fetches from (see stage.ts and ../sources). */
export * from '../sources/index.js';
export * from './cache.js';
export * from './extract.js';
export * from './rules.js';
export * from './stage.js';
export * from './tree.js';
