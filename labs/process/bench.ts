/**
 * sudo npm run bench -- process [MiB] [calls]
 * What the process labs' mechanisms cost here (scripts/bench/process_costs.c: an instructor's tool, kept out of the student workspace and edition because it does what Lab 4.3 asks),
 * median of TRIALS runs: a system call (getppid through syscall(2)) vs the
 * vDSO's clock_gettime, and the first-touch page fault per 4 KiB of anonymous
 * memory on 4 KiB pages (MADV_NOHUGEPAGE) vs 2 MiB transparent huge pages
 * (MADV_HUGEPAGE on an aligned region), with the faults the kernel counted.
 * In a VM the first touch of guest memory may also fault in the host, which
 * makes fault costs here far above a bare-metal machine's.
 */
import { readFileSync } from 'node:fs';
import { buildProgram } from '../../helpers/harness/compile.js';
import { run } from '../../helpers/harness/exec.js';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { unmet } from '../../helpers/harness/requires.js';

const DEFAULT_MIB = 256;
const DEFAULT_CALLS = 2_000_000;
const TRIALS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const field = (out: string, key: string) => Number(out.match(new RegExp(`^${key}=([\\d.-]+)$`, 'm'))?.[1] ?? NaN);

export async function bench(args: string[]): Promise<void> {
  const reason = await unmet(['cc']);
  if (reason) {
    console.log(`process bench skipped: ${reason}`);
    return;
  }
  const mib = Number(args[0] ?? DEFAULT_MIB);
  const calls = Number(args[1] ?? DEFAULT_CALLS);
  if (!Number.isInteger(mib) || mib < 2 || !Number.isInteger(calls) || calls < 1) {
    throw new Error(`usage: sudo npm run bench -- process [MiB >= 2, default ${DEFAULT_MIB}] [calls, default ${DEFAULT_CALLS}]`);
  }
  const bin = (await buildProgram({ src: join(REPO_ROOT, 'scripts', 'bench', 'process_costs.c'), name: 'process_costs' })).path;
  const outs: string[] = [];
  for (let i = 0; i < TRIALS; i++) outs.push((await run(bin, [String(mib), String(calls)], { timeoutMs: 10 * 60_000 })).stdout);
  const m = (k: string) => median(outs.map((o) => field(o, k)));
  const thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim();
  const rows: [string, string][] = [
    ['getppid(2) via syscall(2)', `${m('syscall_ns').toFixed(0)} ns/call`],
    ['clock_gettime (vDSO)', `${m('vdso_ns').toFixed(0)} ns/call`],
    ['syscall / vDSO', `${(m('syscall_ns') / m('vdso_ns')).toFixed(1)}×`],
    [`first write, 4 KiB pages (${mib} MiB)`, `${m('small_ns_per_page').toFixed(0)} ns per 4 KiB, ${m('small_faults')} faults`],
    [`first write, THP (${mib} MiB, MADV_HUGEPAGE)`, `${m('huge_ns_per_page').toFixed(0)} ns per 4 KiB, ${m('huge_faults')} faults, AnonHugePages ${m('huge_kb')} kB`],
    ['faults 4 KiB / THP', `${(m('small_faults') / m('huge_faults')).toFixed(0)}× (512 expected when every 2 MiB is a huge page)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`process: system calls and page faults (median of ${TRIALS}; THP: ${thp}; load ${readFileSync('/proc/loadavg', 'utf8').trim()})`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}
