/**
 * The x86 page-fault tracepoints, exceptions:page_fault_user and page_fault_kernel:
 * `address=0x7f… ip=0x… error_code=0x6`. The error code's bits (arch/x86/include/asm/trap_pf.h):
 * bit 0 the page was present (a protection fault), bit 1 a write, bit 2 from user mode.
 */
import type { TraceEvent } from './tracefs.js';

/** Error-code bits of an x86 page fault. */
export const PF_PROTECTION = 1;
export const PF_WRITE = 2;
export const PF_USER = 4;

/** The faulting address of a page_fault_user/kernel event (0n if the body has none). */
export const faultAddress = (e: TraceEvent): bigint => BigInt(e.body.match(/\baddress=(0x[0-9a-f]+)/)?.[1] ?? '0');

/** The error code of a page_fault_user/kernel event (0 if the body has none). */
export const errorCode = (e: TraceEvent): number => Number(e.body.match(/\berror_code=(0x[0-9a-f]+)/)?.[1] ?? 0);

/** The page faults among `events` whose address lies in [start, end). */
export const faultsIn = (events: readonly TraceEvent[], start: bigint, end: bigint): TraceEvent[] =>
  events.filter((e) => e.event.startsWith('page_fault_') && faultAddress(e) >= start && faultAddress(e) < end);
