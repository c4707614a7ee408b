/**
 * The lab registry: every `lab.json` under labs/ describes one experiment — its
 * area, titles (Chinese and English, as in the seed), spec, the sources the
 * student edits (relative to c/ or LAB_SRC) and the capabilities it needs.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { CapabilityId } from '../harness/capabilities.js';
import { CAPABILITY_IDS } from '../harness/capabilities.js';
import { REPO_ROOT } from '../harness/paths.js';

export interface LabInfo {
  /** e.g. "ebpf/01-bpftrace"; the directory under labs/. */
  readonly id: string;
  readonly area: string;
  readonly order: number;
  readonly title: { readonly zh: string; readonly en: string };
  /** Spec file, relative to the repository. */
  readonly spec: string;
  /** Student-edited sources relative to c/ (each must contain a LAB:BEGIN region). */
  readonly sources: readonly string[];
  /** Hard requirements: the lab skips (or fails under LABS_STRICT=1) without them. */
  readonly requires: readonly CapabilityId[];
  /** Capabilities the lab adapts around when absent (said in its output and report). */
  readonly adapts?: readonly CapabilityId[];
  /** Seconds the lab takes here, roughly (for `labs list`). */
  readonly seconds?: number;
  /** Points per test: {"<test name or prefix>": n}; others are worth 1 (helpers/course/grading.ts). */
  readonly points?: Readonly<Record<string, number>>;
  /**
   * Two runs of this lab's spec may share the machine (each names everything it makes on its own, and no test judges
   * a time, a rate or a CPU share that a second run would disturb): the teeth run its fixtures two at a time
   * (tests/labs/teeth.test.ts). Absent: one at a time, as the labs project runs its files.
   */
  readonly sharesMachine?: boolean;
  /** Points each hint shown costs (`npm run lab -- hint`, helpers/course/reveal.ts); default 0. */
  readonly hintCost?: number;
}

function findLabJson(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...findLabJson(p));
    else if (name === 'lab.json') found.push(p);
  }
  return found;
}

/** The areas in the order the course takes them (the seed's order; the kernel labs come last). */
export const AREA_ORDER: readonly string[] = ['general', 'ebpf', 'io_uring', 'cloud', 'process', 'net', 'extend', 'system', 'paths', 'kernel'];

/** Labs as a course: by area (AREA_ORDER), then their order within it, then id. */
export function courseOrder<T extends { readonly area: string; readonly order: number; readonly id: string }>(labs: readonly T[]): T[] {
  const rank = (a: string) => { const i = AREA_ORDER.indexOf(a); return i < 0 ? AREA_ORDER.length : i; };
  return [...labs].sort((a, b) => rank(a.area) - rank(b.area) || (rank(a.area) === AREA_ORDER.length ? a.area.localeCompare(b.area) : 0)
    || a.order - b.order || a.id.localeCompare(b.id));
}

/** Every lab, in course order. */
export function listLabs(root = join(REPO_ROOT, 'labs')): LabInfo[] {
  return courseOrder(findLabJson(root).map((file) => {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Omit<LabInfo, 'id' | 'spec'> & { spec: string };
    const id = relative(root, dirname(file));
    const bad = [...raw.requires, ...(raw.adapts ?? [])].filter((c) => !(CAPABILITY_IDS as readonly string[]).includes(c));
    if (bad.length) throw new Error(`${file}: unknown capability ${bad.join(', ')} (an unknown requirement is a bug, not a skip)`);
    if (raw.sharesMachine !== undefined && typeof raw.sharesMachine !== 'boolean') throw new Error(`${file}: "sharesMachine" is true or false`);
    return { ...raw, id, spec: relative(REPO_ROOT, join(dirname(file), raw.spec)) };
  }));
}
