/** Template staging: fetch each template through its source, materialise it, record the receipt (see stage.ts). */
export * from './cache.js';
export * from './stage.js';
