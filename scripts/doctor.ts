/**
 * npm run doctor — one line per host capability: ✓/✗, what was found, and
 * the exact command that fixes a ✗. Exits 1 when a capability some lab
 * requires is missing and the lab cannot adapt around it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CAPABILITY_IDS, probeAll, type Capabilities, type CapabilityId } from '../helpers/harness/capabilities.js';
import { listLabs, type LabInfo } from '../helpers/course/labs.js';
import { findLeftovers } from '../helpers/harness/reaper.js';
import { runIsLive } from '../helpers/harness/run-state.js';
import { sandboxBackend } from '../helpers/harness/sandbox.js';
import { guestKernelFacts, guestKernelLine } from '../helpers/course/guest-pass.js';
import { debianKernel } from '../helpers/kernel/qemu.js';

export interface DoctorLine {
  readonly id: CapabilityId;
  readonly ok: boolean;
  readonly text: string;
  /** Missing, required by a lab, not adaptable. */
  readonly blocking: boolean;
}

/** The doctor's table as lines (pure: used by the unit tests). */
export function doctorLines(caps: Capabilities, labs: readonly LabInfo[], color = false): DoctorLine[] {
  const paint = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const width = Math.max(...CAPABILITY_IDS.map((id) => id.length));
  return CAPABILITY_IDS.map((id) => {
    const c = caps[id];
    const requiredBy = labs.filter((l) => l.requires.includes(id)).map((l) => l.id);
    const adaptedBy = labs.filter((l) => l.adapts?.includes(id)).map((l) => l.id);
    const blocking = !c.ok && requiredBy.length > 0 && !c.adaptable;
    const mark = c.ok ? paint(32, '✓') : blocking ? paint(31, '✗') : paint(33, '✗');
    let text = `${mark} ${id.padEnd(width)}  ${c.title}: ${c.detail}`;
    if (!c.ok) {
      if (requiredBy.length) text += `\n  ${' '.repeat(width)}  needed by: ${requiredBy.join(', ')}`;
      if (adaptedBy.length || c.adaptable) text += `\n  ${' '.repeat(width)}  labs adapt: ${adaptedBy.join(', ') || 'yes'}`;
      text += `\n  ${' '.repeat(width)}  fix: ${c.fix}`;
    }
    return { id, ok: c.ok, text, blocking };
  });
}

async function main(): Promise<void> {
  const [caps, labs] = await Promise.all([probeAll(), Promise.resolve(listLabs())]);
  console.log(`kernel ${caps.kernelRelease}; cgroups: ${caps.cgroupInfo.detail}\n`);
  const lines = doctorLines(caps, labs, process.stdout.isTTY);
  for (const l of lines) console.log(l.text);
  // Not a capability of this host: what `npm run test:guest` boots (never blocking: the host pass does not need it).
  const guest = guestKernelLine(guestKernelFacts(debianKernel(), (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, 'qemu-system-x86_64')))));
  console.log(`\n${guest.ok ? '✓' : '✗'} ${guest.text}`);
  const blocking = lines.filter((l) => l.blocking);
  const missing = lines.filter((l) => !l.ok);
  console.log(`\n${lines.length - missing.length}/${lines.length} capabilities present` +
    (blocking.length ? `; ${blocking.length} missing that labs require: ${blocking.map((l) => l.id).join(', ')}` : '; every lab can run or adapt'));
  const sb = sandboxBackend();
  console.log(`sandbox for lab programs: ${sb ? sb.detail : 'no cgroup hierarchy: programs are cleaned up by process group only'}`);
  const left = findLeftovers((run) => !runIsLive(run));
  if (left.length) console.log(`${left.length} objects left by earlier runs (killed, or kept with LABS_KEEP=1); \`sudo npm run clean\` lists and removes them:\n` +
    left.slice(0, 20).map((l) => `  ${l.kind} ${l.name}`).join('\n') + (left.length > 20 ? `\n  … ${left.length - 20} more` : ''));
  process.exitCode = blocking.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
