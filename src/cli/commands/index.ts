import type { RegisterCommand } from '../cli.js';
import { registerSchema } from './schema.js';
import { registerVerify } from './verify.js';

/** Every command, in the order `slipway --help` lists them. One file per command. */
export const commands: readonly RegisterCommand[] = [registerVerify, registerSchema];
