/**
 * npm run doctor — one line per host capability: ✓/✗, what was found, and
 * the exact command that fixes a ✗. Exits 1 when a capability some lab
 * requires is missing and the lab cannot adapt around it.
 */
import { CAPABILITY_IDS, probeAll, type Capabilities, type CapabilityId } from '../helpers/capabilities.js';
import { listLabs, type LabInfo } from '../helpers/labs.js';

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
  const blocking = lines.filter((l) => l.blocking);
  const missing = lines.filter((l) => !l.ok);
  console.log(`\n${lines.length - missing.length}/${lines.length} capabilities present` +
    (blocking.length ? `; ${blocking.length} missing that labs require: ${blocking.map((l) => l.id).join(', ')}` : '; every lab can run or adapt'));
  process.exitCode = blocking.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
