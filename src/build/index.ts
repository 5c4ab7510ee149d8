/** The build stage: Dockerfile preflight, build contexts, and building the plan's images. */
export * from './build.js';
export * from './context.js';
export * from './dockerfile.js';
export * from './preflight.js';
