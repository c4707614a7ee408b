/**
 * Declaring what a spec needs, up front (runc's `requires`, the selftests'
 * TEST_REQUIRE). A missing capability skips each test with its reason and
 * fix; LABS_STRICT=1 turns that skip into a failure. Adaptations (a
 * tracepoint instead of a kprobe, cgroup v1 files instead of v2) are recorded
 * on the test so the output and the report say how the host changed the lab.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, type TestContext } from 'vitest';
import { capabilities, CAPABILITY_IDS, type CapabilityId, type Capabilities } from './capabilities.js';
import { LabError } from './errors.js';
import './metrics.js';

export function strict(): boolean {
  return process.env.LABS_STRICT === '1';
}

/** The reason a set of capabilities is unmet, or undefined when all hold. */
export async function unmet(ids: readonly CapabilityId[]): Promise<string | undefined> {
  const caps = await capabilities();
  const missing = ids.map((id) => caps[id]).filter((c) => !c.ok);
  if (!missing.length) return undefined;
  return missing.map((c) => `missing ${c.id} (${c.title}): ${c.detail}. Fix: ${c.fix}`).join('; ');
}

/** Skip the test with `reason` — or fail it under LABS_STRICT=1. */
export function skipOrFail(ctx: TestContext, reason: string): never {
  ctx.task.meta.skipReason = reason;
  if (strict()) throw new LabError(`LABS_STRICT=1 turns this skip into a failure: ${reason}`, { code: 'E_CAPABILITY' });
  return ctx.skip(reason);
}

/** Inside a describe: every test in it needs these capabilities. */
export function requires(...ids: CapabilityId[]): void {
  beforeEach(async (ctx) => {
    const reason = await unmet(ids);
    if (reason) skipOrFail(ctx, reason);
  });
}

/**
 * The capabilities a lab needs, from the `requires` of the lab.json beside the
 * spec (`labRequires(import.meta.url)`): lab.json is the only copy of the list,
 * so the registry, the report and the spec's skips cannot disagree.
 */
export function labRequires(specUrl: string): CapabilityId[] {
  const file = join(dirname(fileURLToPath(specUrl)), 'lab.json');
  const ids = (JSON.parse(readFileSync(file, 'utf8')) as { requires?: unknown }).requires ?? [];
  const known = CAPABILITY_IDS as readonly string[];
  const bad = Array.isArray(ids) ? ids.filter((id) => typeof id !== 'string' || !known.includes(id)) : [ids];
  if (!Array.isArray(ids) || bad.length) {
    throw new LabError(`${file}: "requires" must list capability ids (${known.join(', ')}); not ${bad.map((b) => JSON.stringify(b)).join(', ')}`, { code: 'E_CAPABILITY' });
  }
  return ids as CapabilityId[];
}

/** Inside a test: skip (or fail) it unless these hold. */
export async function need(ctx: TestContext, ...ids: CapabilityId[]): Promise<Capabilities> {
  const reason = await unmet(ids);
  if (reason) skipOrFail(ctx, reason);
  return capabilities();
}

/**
 * Adaptations a run may forbid with LABS_FORBID_ADAPTED=<id>,… (the guest
 * pass forbids kprobes and cgroup-v1: its kernel has both kprobes and v2, so
 * taking the fallback there is a bug). Matched on the adaptation's message.
 */
export const ADAPTATION_KINDS: Readonly<Record<string, RegExp>> = {
  kprobes: /\bkprobes? absent\b/i,
  'cgroup-v1': /^cgroup v1\b/i,
};

/** The forbidden kind an adaptation message falls under, if any (pure). */
export function forbiddenAdaptation(message: string, forbid = process.env.LABS_FORBID_ADAPTED ?? ''): string | undefined {
  return forbid.split(',').map((k) => k.trim()).filter(Boolean).find((k) => ADAPTATION_KINDS[k]?.test(message));
}

/** Say how the host changed this lab: printed now and kept for the report. */
export async function adapted(ctx: TestContext, message: string): Promise<void> {
  const kind = forbiddenAdaptation(message);
  if (kind) {
    throw new LabError(`LABS_FORBID_ADAPTED=${process.env.LABS_FORBID_ADAPTED}: this run must take the unadapted path, but the lab adapted (${kind}): ${message}`, { code: 'E_CAPABILITY' });
  }
  const list = (ctx.task.meta.adaptations ??= []);
  if (!list.includes(message)) list.push(message);
  console.log(`[adapted] ${message}`);
  await ctx.annotate(message, 'adapted');
}
