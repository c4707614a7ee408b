/**
 * The one /proc/<pid>/mountinfo parser (helpers/harness/mountinfo.ts) and the
 * views built on it, on lines recorded on this machine (Debian, cgroup v1
 * hybrid). The escaped line is a tmpfs mounted on "/tmp/kl-h30rec/a b" in a
 * private mount namespace, made shared (--make-shared) for the optional field.
 */
import { describe, expect, it } from 'vitest';
import { parseCgroupMounts } from '../../helpers/harness/cgroup-mounts.js';
import { parseMountinfo, readMountinfo, unescapeMountField } from '../../helpers/harness/mountinfo.js';
import { findCgroup2Mount } from '../../helpers/kernel/cgroup-bpf.js';

const RECORDED = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
45 23 0:13 / /sys/kernel/tracing rw,relatime - tracefs nodev rw
47 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
49 48 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700
78 52 0:41 / /tmp/kl-h30rec/a\\040b rw,relatime shared:2 - tmpfs none rw,size=1024k
`;

describe('parseMountinfo', () => {
  const entries = parseMountinfo(RECORDED);

  it('reads every line and every field of a plain one', () => {
    expect(entries).toHaveLength(10);
    expect(entries[1]).toEqual({
      mountId: 27, parentId: 1, majorMinor: '254:0', root: '/', mountPoint: '/', options: 'rw,relatime',
      optionalFields: [], fsType: 'ext4', source: '/dev/vda', superOptions: 'rw,discard,resv_strict,resuid=65534,resgid=65534',
    });
  });

  it('decodes \\040 in the mount point and reads the optional fields (a bind mount of a sub-directory: root /run/netns)', () => {
    expect(entries[9]).toMatchObject({ mountId: 78, parentId: 52, majorMinor: '0:41', root: '/', mountPoint: '/tmp/kl-h30rec/a b', optionalFields: ['shared:2'], fsType: 'tmpfs', source: 'none', superOptions: 'rw,size=1024k' });
    expect(entries[7]).toMatchObject({ root: '/run/netns', mountPoint: '/run/netns', optionalFields: ['shared:1'] });
  });

  it('decodes every octal escape the kernel writes (space, tab, newline, backslash) and leaves other text alone', () => {
    expect(unescapeMountField('/a\\040b\\011c\\012d\\134e')).toBe('/a b\tc\nd\\e');
    expect(unescapeMountField('/plain/path')).toBe('/plain/path');
    const [m] = parseMountinfo('90 27 0:50 /sub\\040dir /mnt/x\\134y rw master:3 propagate_from:1 - fuse.my\\040fs my\\040src rw,user_id=0\n');
    expect(m).toMatchObject({ root: '/sub dir', mountPoint: '/mnt/x\\y', optionalFields: ['master:3', 'propagate_from:1'], fsType: 'fuse.my\\040fs', source: 'my src' });
  });

  it('skips blank lines and lines without the " - " separator', () => {
    expect(parseMountinfo('')).toEqual([]);
    expect(parseMountinfo('\n\nnot a mount line\n')).toEqual([]);
  });

  it('reads this process\'s table (the root mount is in it)', () => {
    expect(readMountinfo().some((m) => m.mountPoint === '/')).toBe(true);
    expect(readMountinfo(2 ** 22 + 12345)).toEqual([]);
  });
});

describe('views built on parseMountinfo', () => {
  it('cgroup mounts: v1 controllers, the name= hierarchy, the cgroup2 mount', () => {
    expect(parseCgroupMounts(RECORDED)).toEqual([
      { mountPoint: '/sys/fs/cgroup/cpu', version: 1, controllers: ['cpu'], root: '/' },
      { mountPoint: '/sys/fs/cgroup/systemd', version: 1, controllers: [], name: 'systemd', root: '/' },
      { mountPoint: '/sys/fs/cgroup/unified', version: 2, controllers: [], root: '/' },
    ]);
  });

  it('the cgroup2 mount of the whole hierarchy (cgroup-BPF)', () => {
    expect(findCgroup2Mount(RECORDED)).toBe('/sys/fs/cgroup/unified');
  });
});
