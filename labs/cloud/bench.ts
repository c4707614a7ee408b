/**
 * sudo npm run bench -- cloud [N]
 * What a VM exit costs on this host: N guest `out` instructions (default
 * 200 000), each a round trip guest -> KVM -> user-space VMM -> guest; a plain
 * getppid(2) for comparison; and the time from KVM_CREATE_VM to the first
 * HLT exit (median of several tiny VMs).
 */
import { buildProgram } from '../../helpers/harness/compile.js';
import { run } from '../../helpers/harness/exec.js';
import { labSource } from '../../helpers/harness/paths.js';
import { unmet } from '../../helpers/harness/requires.js';

const DEFAULT_EXITS = 200_000;
const HLT_RUNS = 9;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const field = (out: string, key: string) => Number(out.match(new RegExp(`\\b${key}=([\\d.]+)`))?.[1] ?? NaN);

export async function bench(args: string[]): Promise<void> {
  const reason = await unmet(['root', 'cc', 'kvm']);
  if (reason) {
    console.log(`cloud bench skipped: ${reason}`);
    return;
  }
  const n = Number(args[0] ?? DEFAULT_EXITS);
  if (!Number.isInteger(n) || n < 1) throw new Error(`usage: sudo npm run bench -- cloud [number of exits, default ${DEFAULT_EXITS}]`);
  const exitsBin = (await buildProgram({ src: labSource('cloud/03-kvm/kvm_exits.c') })).path;
  const hltBin = (await buildProgram({ src: labSource('cloud/03-kvm/kvm_hlt.c') })).path;

  const r = await run(exitsBin, [String(n)], { timeoutMs: 10 * 60_000 });
  const exits = field(r.stdout, 'exits');
  if (exits !== n) throw new Error(`kvm_exits counted ${exits} exits for ${n} OUTs:\n${r.stdout}${r.stderr}`);
  const perExit = field(r.stdout, 'ns_per_exit');
  const syscall = field(r.stdout, 'syscall_ns');

  const boots: number[] = [];
  for (let i = 0; i < HLT_RUNS; i++) {
    const h = await run(hltBin, [], { timeoutMs: 30_000 });
    boots.push(field(h.stdout, 'create_to_hlt_ns') / 1000);
  }

  const rows: [string, string][] = [
    [`VM exit to user space (OUT, ${n} exits)`, `${perExit.toFixed(0)} ns/exit`],
    ['getppid(2) system call', `${syscall.toFixed(0)} ns/call`],
    ['exit / syscall', `${(perExit / syscall).toFixed(1)}×`],
    [`KVM_CREATE_VM to first HLT (median of ${HLT_RUNS})`, `${median(boots).toFixed(0)} µs (min ${Math.min(...boots).toFixed(0)}, max ${Math.max(...boots).toFixed(0)})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('cloud: KVM exit cost');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}
