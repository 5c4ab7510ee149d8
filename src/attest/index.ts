/** The attest stage: in-toto statements in DSSE envelopes, signed, stored with the image in the registry. */
export * from './attest.js';
export * from './dsse.js';
export * from './statement.js';
export * from './store.js';
export * from './verify.js';
