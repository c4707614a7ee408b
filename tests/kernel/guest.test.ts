import { describe, expect, it } from 'vitest';
import { guestCommands, parseGuestOutput } from '../../helpers/kernel/guest.js';

describe('guest: running a lab part in a QEMU guest', () => {
  it('mounts tracefs and cgroup2 only when asked, then runs /lab.sh between markers', () => {
    expect(guestCommands({})).toEqual(['echo KL_GUEST_BEGIN', 'sh /lab.sh 2>&1', 'echo "KL_GUEST_EXIT=$?"']);
    const c = guestCommands({ tracefs: true, cgroup2: true });
    expect(c[0]).toBe('mount -t tracefs tracefs /sys/kernel/tracing');
    expect(c[1]).toBe('mount -t cgroup2 cgroup2 /sys/fs/cgroup');
    expect(c.at(-1)).toBe('echo "KL_GUEST_EXIT=$?"');
  });

  it('extracts the script output and status, dropping interleaved printk lines', () => {
    const console_ = 'KL_BOOT release=6.1\r\nKL_GUEST_BEGIN\r\nexit7_hits=1\r\n[    3.1] random: crng init done\r\ncpu.max=50000 100000\r\nKL_GUEST_EXIT=0\r\nKL_DONE\r\n';
    expect(parseGuestOutput(console_)).toEqual({ output: 'exit7_hits=1\ncpu.max=50000 100000', exitCode: 0 });
    expect(parseGuestOutput('KL_GUEST_BEGIN\npartial\n')).toEqual({ output: 'partial\n', exitCode: undefined });
    expect(parseGuestOutput('nothing')).toEqual({ output: '' });
  });
});
