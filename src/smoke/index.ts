/** Post-push smoke: boot the pushed image, prove its identity files, report and record the verdict. */
export * from './archive.js';
export * from './assertions.js';
export * from './expected.js';
export * from './junit.js';
export * from './local-tree.js';
export * from './record.js';
export * from './report.js';
export * from './run.js';
export * from './verdict-store.js';
