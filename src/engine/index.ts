/** The image engine port (`ImageEngine`), its one dockerode implementation, and how to reach the engine. */
export * from './build-stream.js';
export * from './container-archive.js';
export * from './docker-connection.js';
export * from './docker-engine.js';
export * from './image-engine.js';
export * from './lazy-engine.js';
