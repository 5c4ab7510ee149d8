/** Status: is what is pinned the newest thing built from the manifest, pushed, and verified? */
export * from './current.js';
export * from './duration.js';
export * from './flags.js';
export * from './render.js';
export * from './status.js';
export * from './types.js';
