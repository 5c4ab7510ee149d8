/** The build stage: building the plan's images (preflight and build contexts live in ../preflight). */
export * from './build.js';
export * from './resolve-base.js';
