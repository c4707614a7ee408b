import { describe, expect, it } from 'vitest';
import { nsInode, nsLinksIn, parseNsLink } from '../../../../labs/cloud/01-container/namespaces.js';

describe('namespaces helper', () => {
  it('parses readlink /proc/<pid>/ns/<type> text', () => {
    expect(parseNsLink('pid:[4026531836]\n')).toEqual({ type: 'pid', inode: 4026531836 });
    expect(parseNsLink('/proc/1/ns/pid')).toBeUndefined();
  });

  it('finds namespace links in a program output', () => {
    expect(nsLinksIn('pidns=pid:[4026532179]\nnetns=net:[4026531840]')).toEqual([
      { type: 'pid', inode: 4026532179 }, { type: 'net', inode: 4026531840 }]);
  });

  it("reads this process's namespaces (same inode for the same process)", () => {
    const ino = nsInode('uts');
    expect(ino).toBeGreaterThan(0);
    expect(nsInode('uts', process.pid)).toBe(ino);
  });
});
