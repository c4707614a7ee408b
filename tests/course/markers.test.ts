import { describe, expect, it } from 'vitest';
import { findRegions, MarkerError, toStarter } from '../../helpers/course/markers.js';

const C = [
  'int f(void)',
  '{',
  '\t// LAB:BEGIN return the action that drops the packet',
  '\treturn XDP_DROP;',
  '\t// LAB:STARTER',
  '\t// return XDP_PASS;',
  '\t// LAB:END',
  '}',
].join('\n');

describe('markers', () => {
  it('finds a C region with its hint and starter lines', () => {
    expect(findRegions(C)).toEqual([{ begin: 3, end: 7, hint: 'return the action that drops the packet', starter: ['\treturn XDP_PASS;'], indent: '\t', leader: '//' }]);
  });

  it('replaces the region by the TODO hint and the uncommented starter', () => {
    expect(toStarter(C)).toBe(['int f(void)', '{', '\t// TODO: return the action that drops the packet', '\treturn XDP_PASS;', '}'].join('\n'));
  });

  it('handles # comments (Python, shell) and keeps nested indentation of starter lines', () => {
    const py = ['def f():', '    # LAB:BEGIN attach to clone', '    b.attach()', '    # LAB:STARTER', '    # if True:', '    #     pass', '    # LAB:END', 'f()'].join('\n');
    expect(toStarter(py)).toBe(['def f():', '    # TODO: attach to clone', '    if True:', '        pass', 'f()'].join('\n'));
  });

  it('drops the solution entirely when there is no STARTER block', () => {
    const sh = ['echo a', '# LAB:BEGIN: run the container', 'unshare --pid chroot /r /bin/sh', '# LAB:END', 'echo b'].join('\n');
    expect(toStarter(sh)).toBe(['echo a', '# TODO: run the container', 'echo b'].join('\n'));
  });

  it('keeps several regions and the text between them', () => {
    const two = ['a', '// LAB:BEGIN one', 'x', '// LAB:END', 'b', '// LAB:BEGIN two', 'y', '// LAB:END', 'c'].join('\n');
    expect(toStarter(two)).toBe(['a', '// TODO: one', 'b', '// TODO: two', 'c'].join('\n'));
  });

  it('leaves a file without markers unchanged', () => {
    expect(toStarter('int main(void) { return 0; }\n')).toBe('int main(void) { return 0; }\n');
  });

  it.each([
    ['an unclosed region', '// LAB:BEGIN x\ny', /never closed/],
    ['a nested BEGIN', '// LAB:BEGIN x\n// LAB:BEGIN y\n// LAB:END', /inside the region opened at line 1/],
    ['an END without BEGIN', 'x\n// LAB:END', /without LAB:BEGIN/],
    ['a BEGIN without hint', '// LAB:BEGIN\n// LAB:END', /needs a hint/],
    ['an uncommented STARTER line', '// LAB:BEGIN x\n// LAB:STARTER\nreturn 1;\n// LAB:END', /must be commented/],
  ])('rejects %s with file and line', (_what, text, message) => {
    expect(() => findRegions(text, 'f.c')).toThrow(MarkerError);
    expect(() => findRegions(text, 'f.c')).toThrow(message);
  });
});
