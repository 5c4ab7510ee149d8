/**
 * Slipway's library API. The CLI (`src/cli`) is a thin layer over these exports; a control
 * plane or a CI script can call them directly. Folders follow the pipeline's stages:
 * manifest -> sources -> stage -> preflight/verify -> plan -> build -> publish -> smoke -> promote.
 */
export * from './app/open-ports.js';
export * from './app/settings.js';
export * from './attest/index.js';
export * from './build/index.js';
export * from './core/errors.js';
export * from './core/events.js';
export * from './core/image-ref.js';
export * from './core/labels.js';
export * from './core/redact.js';
export { DEFAULT_TIMEOUTS, parseTimeouts, type Timeouts, timeoutsFor } from './core/timeouts.js';
export * from './core/tree-digest.js';
export * from './engine/index.js';
export * from './manifest/contract.js';
export * from './manifest/graph.js';
export * from './manifest/json-schema.js';
export * from './manifest/load.js';
export * from './manifest/schema.js';
export * from './plan/matrix.js';
export * from './plan/plan.js';
export * from './plan/types.js';
export * from './preflight/index.js';
export * from './promote/index.js';
export * from './publish/index.js';
export * from './release/attest-step.js';
export * from './release/finish.js';
export * from './release/ports.js';
export * from './release/publish.js';
export * from './release/release.js';
export * from './smoke/index.js';
export * from './sources/index.js';
export * from './stage/index.js';
export * from './stage/receipt.js';
export * from './status/index.js';
export * from './verify/verify.js';
