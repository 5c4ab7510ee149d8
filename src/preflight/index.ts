/** Dockerfile preflight and build contexts: what a build will read, checked before anything is built. */
export * from './context.js';
export * from './dockerfile.js';
export * from './preflight.js';
