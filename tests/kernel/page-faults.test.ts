import { describe, expect, it } from 'vitest';
import { errorCode, faultAddress, faultsIn, PF_PROTECTION, PF_WRITE } from '../../helpers/kernel/page-faults.js';
import { parseTraceLine, type TraceEvent } from '../../helpers/kernel/tracefs.js';

// Made up in the format exceptions/page_fault_user/format prints (address=%ps ip=%ps error_code=0x%lx).
const line = (addr: string, code: string) =>
  `             vm-41207   [001] .....  9123.456789: page_fault_user: address=${addr} ip=0x401136 error_code=${code}`;
const ev = (addr: string, code: string) => parseTraceLine(line(addr, code)) as TraceEvent;

describe('page faults (exceptions:page_fault_user/kernel)', () => {
  it('reads the address and the error code of a fault', () => {
    const e = ev('0x7f3a5c200000', '0x7');
    expect({ addr: faultAddress(e), code: errorCode(e), write: (errorCode(e) & PF_WRITE) !== 0, present: (errorCode(e) & PF_PROTECTION) !== 0 })
      .toEqual({ addr: 0x7f3a5c200000n, code: 7, write: true, present: true });
    expect(errorCode(ev('0x1000', '0x4')) & PF_WRITE).toBe(0);
  });

  it('keeps the faults in [start, end) only', () => {
    const es = [ev('0x1000', '0x6'), ev('0x1fff', '0x6'), ev('0x2000', '0x6'), ev('0xfff', '0x6')];
    expect(faultsIn(es, 0x1000n, 0x2000n).map(faultAddress)).toEqual([0x1000n, 0x1fffn]);
  });
});
