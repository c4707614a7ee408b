/**
 * Any run of lab specs says on its first line which sources it tests, and
 * names the sudo trap (a workspace exists, LAB_SRC is unset) loudly.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LabInfo } from '../../helpers/course/labs.js';
import { findWorkspaces, looksLikeWorkspace, sourcesBanner } from '../../helpers/course/sources.js';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

const LABS = [
  { id: 'io_uring/02-uring-cp', sources: ['io_uring/02-uring-cp/uring_cp.c', 'io_uring/02-uring-cp/uring_cp_pipelined.c'] },
  { id: 'cloud/02-cgroup', sources: ['cloud/02-cgroup/cgexec.sh'] },
] as unknown as LabInfo[];
const fakeFs = (files: string[]) => (p: string) => files.includes(p);
const HOME = { HOME: '/home/ann', SUDO_USER: '' };

describe('which sources a run tests', () => {
  it('names the workspace when LAB_SRC is set (relative paths from where npm started)', () => {
    expect(sourcesBanner(LABS, { LAB_SRC: 'labs', INIT_CWD: '/home/ann' })).toEqual(['[kernel-labs] sources: your workspace LAB_SRC=/home/ann/labs']);
  });

  it('says the reference is tested when LAB_SRC is unset and no workspace is found', () => {
    expect(sourcesBanner(LABS, HOME, fakeFs([]))).toEqual(['[kernel-labs] sources: the reference solutions in c/ (LAB_SRC is not set)']);
  });

  it('in a student edition (its .classroom/manifest.json) says c/ is the student\'s own work, and warns of no workspace', () => {
    const fs = fakeFs([join(REPO_ROOT, '.classroom', 'manifest.json'), '/home/ann/labs/io_uring/02-uring-cp/uring_cp.c', '/home/ann/labs/cloud/02-cgroup/cgexec.sh']);
    expect(sourcesBanner(LABS, HOME, fs)).toEqual(['[kernel-labs] sources: your files in c/ (a student edition: c/ is your work, and what CI grades)']);
  });

  it('warns loudly when a workspace exists under the home but LAB_SRC is unset (the sudo trap), with the command to use', () => {
    const fs = fakeFs(['/home/ann/labs/io_uring/02-uring-cp/uring_cp.c', '/home/ann/labs/cloud/02-cgroup/cgexec.sh']);
    const lines = sourcesBanner(LABS, HOME, fs);
    expect(lines[1]).toContain('!!! WARNING: this run does NOT test your work. A workspace exists at /home/ann/labs but LAB_SRC is not set');
    expect(lines[2]).toContain('sudo LAB_SRC=/home/ann/labs npm run lab -- <lab>');
  });

  it('needs two lab sources to call a directory a workspace (a stray file is not one)', () => {
    expect(looksLikeWorkspace('/home/ann/labs', LABS, fakeFs(['/home/ann/labs/cloud/02-cgroup/cgexec.sh']))).toBe(false);
    expect(findWorkspaces(LABS, { ...HOME, INIT_CWD: '/srv/ws' }, fakeFs(['/srv/ws/io_uring/02-uring-cp/uring_cp.c', '/srv/ws/io_uring/02-uring-cp/uring_cp_pipelined.c']))).toEqual(['/srv/ws']);
  });

  it('is the first line vitest prints for a run of the labs project', () => {
    const r = spawnSync(join(REPO_ROOT, 'node_modules/.bin/vitest'), ['run', '--project', 'labs', 'labs/io_uring/01-fio', '-t', 'no test has this name'], {
      cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, LAB_SRC: '/tmp/some-workspace', LABS_REPORT: 'off', FORCE_COLOR: '0', LABS_SOURCES_ANNOUNCED: '' }, timeout: 60_000,
    });
    expect(r.stdout.split('\n').find((l) => l.trim())).toBe('[kernel-labs] sources: your workspace LAB_SRC=/tmp/some-workspace');
  });
});
