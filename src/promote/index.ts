/** Promotion: pin stores (file, PostgreSQL), the smoke-gated promote/rollback, and their plans. */
export * from './across.js';
export * from './file-store.js';
export * from './open.js';
export * from './pin-store.js';
export * from './pin-store-errors.js';
export * from './postgres-store.js';
export * from './promote.js';
