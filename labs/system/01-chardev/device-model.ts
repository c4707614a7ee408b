/**
 * System Lab 1's model of /dev/labchar as the README documents it (pure): a
 * buffer of CAPACITY bytes per open, zero at first; the size is the end of
 * the furthest byte written; read(2) stops at the size, write(2) fails with
 * ENOSPC at CAPACITY and is shortened across it; lseek(2) from 0, the
 * position or the size, within 0..CAPACITY; ioctl LABCHAR_GET_SIZE and
 * LABCHAR_RESET, ENOTTY for anything else; EFAULT for a bad pointer, nothing
 * changed; pread(2)/pwrite(2) as read and write at their offset, the
 * position left alone. Fed the probe's operations, it gives the result each system call
 * must have; judge.ts compares them with what the kernel returned.
 */

export const CAPACITY = 4096;
/** _IOR('k', 1, int) and _IO('k', 2), as in labchar.c. */
export const GET_SIZE = 0x80046b01;
export const RESET = 0x6b02;
export const ERRNO = { EBADF: 9, ENOMEM: 12, EFAULT: 14, EBUSY: 16, EINVAL: 22, ENOTTY: 25, ENOSPC: 28 } as const;
export const ERRNO_NAME: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** Which test judges an operation. */
export type Group = 'offsets' | 'lseek' | 'perOpen' | 'ioctl' | 'efault';

/** One operation of the probe (c/system/chardev_probe.c): `open:A`, `write:A:<hex>`, `read:A:<n>`, `seek:A:<off>:<S|C|E>`, `pwrite:A:<hex>:<off>`, `pread:A:<n>:<off>`, `ioctl:A:<cmd hex>`, `readbad:A:<n>`, `writebad:A:<n>`, `ioctlbad:A:<cmd hex>`, `close:A`. */
export interface Op { readonly group: Group; readonly text: string }

/** What a system call returned: its value, errno (0 when it succeeded), the int the ioctl left, the bytes a read gave (hex). */
export interface Outcome { readonly ret: number; readonly errno: number; readonly val?: number; readonly data?: string; /** open(2): any descriptor (ret ≥ 0) will do. */ readonly anyFd?: boolean }

interface OpenFile { buf: Uint8Array; size: number; pos: number }

const fail = (errno: number): Outcome => ({ ret: -1, errno });
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The results the documented device gives for these operations, in order (pure). */
export function expectedOutcomes(ops: readonly Op[]): Outcome[] {
  const files = new Map<string, OpenFile>();
  const out: Outcome[] = [];
  for (const { text } of ops) {
    const [name, slot = '', a1, a2] = text.split(':');
    const f = files.get(slot);
    const needFile = () => f ?? undefined;
    switch (name) {
      case 'open':
        files.set(slot, { buf: new Uint8Array(CAPACITY), size: 0, pos: 0 });
        out.push({ ret: 0, errno: 0, anyFd: true });
        break;
      case 'close':
        files.delete(slot);
        out.push(f ? { ret: 0, errno: 0 } : fail(ERRNO.EBADF));
        break;
      case 'write': {
        if (!needFile()) { out.push(fail(ERRNO.EBADF)); break; }
        const data = Buffer.from(a1 ?? '', 'hex');
        if (f!.pos >= CAPACITY) { out.push(fail(ERRNO.ENOSPC)); break; }
        const n = Math.min(data.length, CAPACITY - f!.pos);
        f!.buf.set(data.subarray(0, n), f!.pos);
        f!.pos += n;
        f!.size = Math.max(f!.size, f!.pos);
        out.push({ ret: n, errno: 0 });
        break;
      }
      case 'read': {
        if (!needFile()) { out.push(fail(ERRNO.EBADF)); break; }
        const n = Math.max(0, Math.min(Number(a1), f!.size - f!.pos));
        const data = f!.buf.subarray(f!.pos, f!.pos + n);
        f!.pos += n;
        out.push(n > 0 ? { ret: n, errno: 0, data: toHex(data) } : { ret: 0, errno: 0 });
        break;
      }
      case 'pwrite': {
        if (!needFile()) { out.push(fail(ERRNO.EBADF)); break; }
        const data = Buffer.from(a1 ?? '', 'hex'), at = Number(a2);
        if (at >= CAPACITY) { out.push(fail(ERRNO.ENOSPC)); break; }
        const n = Math.min(data.length, CAPACITY - at);
        f!.buf.set(data.subarray(0, n), at);
        f!.size = Math.max(f!.size, at + n);
        out.push({ ret: n, errno: 0 });
        break;
      }
      case 'pread': {
        if (!needFile()) { out.push(fail(ERRNO.EBADF)); break; }
        const at = Number(a2), n = Math.max(0, Math.min(Number(a1), f!.size - at));
        out.push(n > 0 ? { ret: n, errno: 0, data: toHex(f!.buf.subarray(at, at + n)) } : { ret: 0, errno: 0 });
        break;
      }
      case 'seek': {
        if (!needFile()) { out.push(fail(ERRNO.EBADF)); break; }
        const base = a2 === 'S' ? 0 : a2 === 'C' ? f!.pos : a2 === 'E' ? f!.size : NaN;
        const to = base + Number(a1);
        if (!(to >= 0 && to <= CAPACITY)) { out.push(fail(ERRNO.EINVAL)); break; }
        f!.pos = to;
        out.push({ ret: to, errno: 0 });
        break;
      }
      case 'ioctl': {
        if (!needFile()) { out.push({ ...fail(ERRNO.EBADF), val: -1 }); break; }
        const cmd = parseInt(a1 ?? '0', 16);
        if (cmd === GET_SIZE) out.push({ ret: 0, errno: 0, val: f!.size });
        else if (cmd === RESET) { f!.buf.fill(0); f!.size = 0; out.push({ ret: 0, errno: 0, val: -1 }); }
        else out.push({ ...fail(ERRNO.ENOTTY), val: -1 });
        break;
      }
      case 'readbad': case 'writebad': case 'ioctlbad':
        out.push(needFile() ? fail(ERRNO.EFAULT) : fail(ERRNO.EBADF));
        break;
      default:
        throw new Error(`unknown probe operation ${text}`);
    }
  }
  return out;
}

/** The probe's lines `<n> <op> ret=<r> errno=<e>[ val=<v>][ data=<hex>]` → outcomes by index (pure). */
export function parseProbe(text: string): Map<number, Outcome> {
  const out = new Map<number, Outcome>();
  for (const line of text.split('\n')) {
    const m = line.match(/^(\d+) \S+ ret=(-?\d+) errno=(\d+)(?: val=(-?\d+))?(?: data=([0-9a-f]*))?\s*$/);
    if (!m) continue;
    out.set(Number(m[1]), { ret: Number(m[2]), errno: Number(m[3]), ...(m[4] !== undefined ? { val: Number(m[4]) } : {}), ...(m[5] ? { data: m[5] } : {}) });
  }
  return out;
}

/** An outcome in words: `ret 12`, `-1 ENOTTY`, `ret 0, int 345`, `ret 5: 0a0b0c0d0e`. */
export function showOutcome(o?: Outcome, maxHex = 48): string {
  if (!o) return '(no result: the call was not made)';
  if (o.anyFd) return 'a file descriptor';
  const r = o.ret < 0 ? `-1 ${ERRNO_NAME[o.errno] ?? `errno ${o.errno}`}` : `ret ${o.ret}`;
  const v = o.val !== undefined && o.ret >= 0 ? `, int ${o.val}` : '';
  const d = o.data ? `: ${o.data.length > maxHex ? `${o.data.slice(0, maxHex)}…(${o.data.length / 2} bytes)` : o.data}` : '';
  return `${r}${v}${d}`;
}

/** Whether the kernel's outcome is the model's (the int only for GET_SIZE-like results, the bytes only for reads). */
export function sameOutcome(want: Outcome, got?: Outcome): boolean {
  if (!got) return false;
  if (want.anyFd) return got.ret >= 0 && got.errno === 0;
  if (want.ret !== got.ret || want.errno !== got.errno) return false;
  if (want.ret >= 0 && want.val !== undefined && want.val !== -1 && want.val !== got.val) return false;
  return (want.data ?? '') === (got.data ?? '');
}
