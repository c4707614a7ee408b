/**
 * studentSources(): the one reading of LAB_SRC. `~` is the invoking user's
 * home, a relative path is taken from where the student typed the command
 * (INIT_CWD when npm set it, else the working directory), and every process
 * of a run gets the same absolute path (pinStudentSources).
 */
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinStudentSources, REFERENCE_SRC, sourceRoot, studentSources } from '../../helpers/harness/paths.js';

const HOME = { HOME: '/home/ann', SUDO_USER: '' };

describe('studentSources', () => {
  it('is undefined when LAB_SRC is unset or empty (the specs test c/)', () => {
    expect(studentSources({ ...HOME })).toBeUndefined();
    expect(studentSources({ ...HOME, LAB_SRC: '' })).toBeUndefined();
  });

  it('keeps an absolute path', () => {
    expect(studentSources({ ...HOME, LAB_SRC: '/srv/ws', INIT_CWD: '/tmp' })).toBe('/srv/ws');
  });

  it.each([
    ['~/x', '/home/ann/x'],
    ['./x', '/work/start/x'],
    ['x', '/work/start/x'],
    ['../x', '/work/x'],
    ['~', '/home/ann'],
  ])('with INIT_CWD set: %s is %s', (given, expected) => {
    expect(studentSources({ ...HOME, LAB_SRC: given, INIT_CWD: '/work/start' })).toBe(expected);
  });

  it.each([
    ['~/x', '/home/ann/x'],
    ['./x', join(process.cwd(), 'x')],
    ['x', join(process.cwd(), 'x')],
  ])('with INIT_CWD unset: %s is %s (from the working directory)', (given, expected) => {
    expect(studentSources({ ...HOME, LAB_SRC: given })).toBe(expected);
  });

  it('takes ~ from the home of the user who ran sudo', () => {
    const root = studentSources({ HOME: '/root', SUDO_USER: 'root', LAB_SRC: '~/x' });
    expect(root).toBe('/root/x');
  });

  it('pinStudentSources writes the absolute path back, so a process started from elsewhere reads the same directory', () => {
    const env: NodeJS.ProcessEnv = { ...HOME, LAB_SRC: 'ws', INIT_CWD: '/work/start' };
    expect(pinStudentSources(env)).toBe('/work/start/ws');
    expect(env.LAB_SRC).toBe('/work/start/ws');
    // A child with another INIT_CWD and working directory: the same directory.
    expect(studentSources({ ...env, INIT_CWD: '/elsewhere' })).toBe('/work/start/ws');
    const unset: NodeJS.ProcessEnv = { ...HOME };
    expect(pinStudentSources(unset)).toBeUndefined();
    expect('LAB_SRC' in unset).toBe(false);
  });

  it('sourceRoot() is the resolved LAB_SRC, else the reference c/', () => {
    const saved = { LAB_SRC: process.env.LAB_SRC, INIT_CWD: process.env.INIT_CWD };
    try {
      process.env.LAB_SRC = 'rel-ws';
      process.env.INIT_CWD = '/work/start';
      expect(sourceRoot()).toBe(resolve('/work/start', 'rel-ws'));
      delete process.env.LAB_SRC;
      expect(sourceRoot()).toBe(REFERENCE_SRC);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });
});
