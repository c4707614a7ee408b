/**
 * Setup file of the `labs` project (runs in the worker, once per spec file):
 * whatever a spec registered outside a test (in beforeAll) is released after
 * the file, even when it failed.
 */
import { afterAll } from 'vitest';
import { releaseAll } from './resources.js';

afterAll(async () => {
  await releaseAll();
});
