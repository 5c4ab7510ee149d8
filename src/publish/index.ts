/** The publish stage: registries (ECR, OCI), pushing images with tags, and manifest copies. */
export * from './copy.js';
export * from './ecr.js';
export * from './oci.js';
export * from './open.js';
export * from './push.js';
export * from './registry.js';
export * from './retry.js';
export * from './transfer.js';
export * from './url.js';
