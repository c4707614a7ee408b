/**
 * Teeth of Net Lab 5.6 (labs/net/06-vfs-write): four wrong BPF programs a
 * student might write each fail the spec on the test that names their
 * mistake; a correct program in another style (a per-thread hash map,
 * bpf_ringbuf_output, the inode from the dentry) passes every test.
 * Each run boots the Debian guest once (about 10 s under TCG).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';
import { HARNESS_FAILURE, runLabWith, type NestedTest } from './nested-lab.js';

const SPEC = 'labs/net/06-vfs-write/vfs-write.spec.ts';
const SOURCE = 'net/06-vfs-write/vfs_chain.bpf.c';
const fixture = (name: string) => join(REPO_ROOT, 'tests/fixtures/net/06-vfs-write', name);
const failedNames = (tests: NestedTest[]) => tests.filter((t) => t.status === 'failed').map((t) => t.name);
const summary = (tests: NestedTest[]) => tests.map((t) => `${t.status}: ${t.name}${t.message ? `\n    ${t.message.split('\n')[0]}` : ''}`).join('\n');

const root = process.getuid?.() === 0;

describe.skipIf(!root)('net/06-vfs-write against wrong and correct BPF programs', { timeout: 400_000 }, () => {
  const wrong = [
    { file: 'shortcut_syscall_tracepoints.bpf.c', what: 'syscall tracepoints, no VFS function', catches: /^attaches with BPF trampolines/ },
    { file: 'hardcoded_page_count.bpf.c', what: 'a fixed 4096-byte count', catches: /^reports one vfs_write per write\(2\)/ },
    { file: 'off_by_one_count_as_ret.bpf.c', what: 'the count where the result belongs', catches: /^vfs_write returns what each write\(2\) returned/ },
    { file: 'no_inode_filter.bpf.c', what: 'filters by process name, not by inode', catches: /^reports only the lab's file/ },
  ];

  it.for(wrong)('$file ($what) fails the spec on an assertion', async ({ file, catches }, ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture(file) }, ctx.signal);
    const failed = tests.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.name).some((n) => catches.test(n)), `${file}: expected a failure matching ${catches}\n${summary(tests)}`).toBe(true);
    for (const t of failed) expect(t.message, `${file}: "${t.name}" failed for a harness reason`).not.toMatch(HARNESS_FAILURE);
    // The workload and the judge were sound: the control tests pass whatever the program.
    expect(tests.filter((t) => t.name.startsWith('control:')).map((t) => t.status), summary(tests)).toEqual(['passed', 'passed']);
  });

  it('variant_pid_map.bpf.c (per-thread hash map, ringbuf_output, inode from the dentry) passes every test', async (ctx) => {
    const tests = await runLabWith(SPEC, { [SOURCE]: fixture('variant_pid_map.bpf.c') }, ctx.signal);
    expect(failedNames(tests), summary(tests)).toEqual([]);
    expect(tests.every((t) => t.status === 'passed'), summary(tests)).toBe(true);
  });
});
