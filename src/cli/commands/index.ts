import type { RegisterCommand } from '../cli.js';
import { registerAttestations } from './attestations.js';
import { registerBuild } from './build.js';
import { registerPins } from './pins.js';
import { registerPlan } from './plan.js';
import { registerPush } from './push.js';
import { registerRelease } from './release.js';
import { registerSchema } from './schema.js';
import { registerSmoke } from './smoke.js';
import { registerStage } from './stage.js';
import { registerStatus } from './status.js';
import { registerTag } from './tag.js';
import { registerVerify } from './verify.js';

/** Every command, in the order `slipway --help` lists them. One file per command. */
export const commands: readonly RegisterCommand[] = [
  registerVerify,
  registerStage,
  registerPlan,
  registerBuild,
  registerPush,
  registerTag,
  registerSmoke,
  registerPins,
  registerAttestations,
  registerRelease,
  registerStatus,
  registerSchema,
];
