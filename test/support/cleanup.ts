/** Per-file setup (vitest setupFiles): every temp dir a test file made is removed after it. */
import { afterAll } from 'vitest';
import { removeAllTempDirs } from './temp.js';

afterAll(() => {
  removeAllTempDirs();
});
