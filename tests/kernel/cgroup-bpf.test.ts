import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCgroup2Mount, parseAttachedLine, parseCgroupShow, parseMountinfo } from '../../helpers/kernel/cgroup-bpf.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/extend', name), 'utf8');

describe('cgroup-bpf parsers (recorded output)', () => {
  it('finds the unified hierarchy at /sys/fs/cgroup/unified on a hybrid (v1 controllers) host', () => {
    const text = fixture('mountinfo-hybrid.txt');
    expect(findCgroup2Mount(text)).toBe('/sys/fs/cgroup/unified');
    expect(parseMountinfo(text).filter((m) => m.fsType === 'cgroup').map((m) => m.mountPoint)).toContain('/sys/fs/cgroup/memory');
  });

  it('finds /sys/fs/cgroup on a v2 host and nothing when cgroup2 is not mounted; unescapes octal spaces', () => {
    const v2 = '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
    expect(findCgroup2Mount(v2)).toBe('/sys/fs/cgroup');
    // A bind mount of a sub-tree is not the whole hierarchy.
    expect(findCgroup2Mount('40 35 0:30 /kl-x /mnt/sub rw - cgroup2 cgroup2 rw\n')).toBeUndefined();
    expect(findCgroup2Mount('22 1 0:21 / /proc rw - proc proc rw\n')).toBeUndefined();
    expect(parseMountinfo('50 1 0:40 / /tmp/a\\040b rw - tmpfs tmpfs rw\n')[0]!.mountPoint).toBe('/tmp/a b');
  });

  it('parses bpftool -j cgroup show with a sysctl program attached, and its empty output', () => {
    expect(parseCgroupShow(fixture('bpftool-cgroup-show-sysctl.json')))
      .toEqual([{ id: 243, attachType: 'cgroup_sysctl', attachFlags: 'override', name: 'guard_sysctl' }]);
    expect(parseCgroupShow('')).toEqual([]);
    expect(parseCgroupShow('[]\n')).toEqual([]);
  });

  it('reads the loader\'s attached line', () => {
    expect(parseAttachedLine('attached prog_id=243 name=guard_sysctl\n')).toEqual({ progId: 243, name: 'guard_sysctl' });
    expect(parseAttachedLine('libbpf: prog \'x\': failed to load\n')).toBeUndefined();
  });
});
