/**
 * Setup file of the `labs` project: each test carries its points as a JUnit
 * property (`<property name="points" value="3">`, from the lab's lab.json),
 * so a JUnit reader can grade without reports/labs.json: a passed testcase
 * earns its points, a failed or skipped one earns none.
 */
import { resolve } from 'node:path';
import { beforeEach } from 'vitest';
import { listLabs, type LabInfo } from './labs.js';
import { REPO_ROOT } from '../harness/paths.js';
import { pointsFor } from './grading.js';

let labs: LabInfo[] | undefined;

function labOf(file: string): LabInfo | undefined {
  try {
    labs ??= listLabs();
  } catch {
    return undefined; // a broken lab.json is reported by the lab registry's own users
  }
  return labs.find((l) => resolve(REPO_ROOT, l.spec) === resolve(file));
}

beforeEach((ctx) => {
  const lab = labOf(ctx.task.file.filepath);
  if (!lab) return;
  ctx.annotate(String(pointsFor(ctx.task.name, lab.points)), 'points');
});
