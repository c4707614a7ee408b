/**
 * The fixture format (tests/labs/fixtures.ts): every fixture.json of the tree
 * is well-formed, and a wrong program's run stops after its last named test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabInfo } from '../../helpers/course/labs.js';
import { loadFixtures, selector, untilPattern } from './fixtures.js';

const LISTED = [
  'Lab 6 > control: the given code builds',
  'Lab 6 > both hogs are pinned to the one CPU (the weights 1024 and n)',
  'Lab 6 > CPU time splits in the ratio of the weights',
  'Lab 6 > vruntime advances alike',
];

describe('fixture.json', () => {
  it('every fixture of the tree is well-formed and replaces a source of its lab', () => {
    const all = loadFixtures();
    expect(all.length).toBeGreaterThan(20);
    for (const f of all) expect(Object.keys(f.replaces).length, f.dir).toBeGreaterThan(0);
  });

  it('a title part matches anywhere; "/…/" is a regular expression', () => {
    expect(selector('pinned to the one CPU').test(LISTED[1]!)).toBe(true);
    expect(selector('/^both hogs/').test('x both hogs')).toBe(false);
    expect(selector('the weights 1024 (and n)').test('the weights 1024 (and n)')).toBe(true);
  });

  it('a wrong program runs every test up to its last named one, and no further', () => {
    const re = new RegExp(untilPattern({ name: 'w', failing: [{ test: '/^both hogs/' }], passes: ['control:'] }, LISTED));
    expect(LISTED.map((n) => re.test(n))).toEqual([true, true, false, false]);
    const two = new RegExp(untilPattern({ name: 'w', failing: [{ test: '/^both hogs/' }, { test: 'ratio of the weights' }], passes: [] }, LISTED));
    expect(LISTED.map((n) => two.test(n))).toEqual([true, true, true, false]);
  });

  it('a fixture naming a test the spec does not have is an error, not a silent pass', () => {
    expect(() => untilPattern({ name: 'w', failing: [{ test: 'no such test' }], passes: [] }, LISTED)).toThrow(/matches no test of the spec/);
  });

  describe('a malformed fixture is refused with the file to fix', () => {
    const root = mkdtempSync(join(tmpdir(), 'fixtures-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    const lab = { id: 'x/01-a', spec: 'labs/x/01-a/a.spec.ts', sources: ['00-environment/sysinfo.c'], requires: ['cc'] } as unknown as LabInfo;
    const put = (name: string, json: object, file = 'sysinfo.c') => {
      const dir = join(root, 'x/01-a', name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'fixture.json'), JSON.stringify(json));
      writeFileSync(join(dir, file), 'int main(void) { return 0; }\n');
    };
    it('a wrong program without the test it must fail', () => {
      put('wrong-a', { expect: 'fail', why: 'w' });
      expect(() => loadFixtures(root, [lab])).toThrow(/wrong-a\/fixture.json: a wrong program names the test it must fail/);
      rmSync(join(root, 'x/01-a/wrong-a'), { recursive: true });
    });
    it('a file that replaces no source of the lab', () => {
      put('wrong-b', { expect: 'fail', why: 'w', failing: 't' }, 'other.c');
      expect(() => loadFixtures(root, [lab])).toThrow(/other.c replaces no source of x\/01-a/);
      rmSync(join(root, 'x/01-a/wrong-b'), { recursive: true });
    });
    it('a correct one reads as passing every test', () => {
      put('correct-c', { expect: 'pass', why: 'another style' });
      expect(loadFixtures(root, [lab]).map((f) => f.title)).toEqual(['correct-c (another style) passes every test']);
    });
    it('needs its lab\'s capabilities and its own; a capability that does not exist is refused', () => {
      put('wrong-d', { expect: 'fail', why: 'reads', failing: 't', requires: ['zero-page'] });
      expect(loadFixtures(root, [lab]).find((f) => f.name === 'wrong-d')?.requires).toEqual(['cc', 'zero-page']);
      put('wrong-d', { expect: 'fail', why: 'reads', failing: 't', requires: ['no-such'] });
      expect(() => loadFixtures(root, [lab])).toThrow(/wrong-d\/fixture.json: "requires" names no capability: no-such/);
      rmSync(join(root, 'x/01-a/wrong-d'), { recursive: true });
    });
  });
});
