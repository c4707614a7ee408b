/** helpers/harness/verdict.ts: what differs, said in the message. */
import { describe, expect, it } from 'vitest';
import { clip, differences, holds, holdsQuietly } from '../../helpers/harness/verdict.js';

describe('verdict', () => {
  it('names each fact that differs, with what it should be', () => {
    expect(differences({ got: { a: 1, b: true, c: [1] }, want: { a: 1, b: false, c: [2] }, message: '' })).toEqual(['b: true (want false)', 'c: [1] (want [2])']);
    expect(differences({ got: { n: 5n, gone: undefined }, want: { n: 6n, gone: 'x' }, message: '' })).toEqual(['n: "0x5" (want "0x6")', 'gone: undefined (want "x")']);
    expect(differences({ got: 3, want: 4, message: '' })).toEqual(['3 (want 4)']);
    expect(differences({ got: { a: 1 }, want: { a: 1 }, message: '' })).toEqual([]);
  });

  it('asserts with the evidence and the differences in the message', () => {
    expect(() => holds({ got: { direct: false }, want: { direct: true }, message: 'the job' })).toThrow(/the job\ndiffers: direct: false \(want true\)/);
    expect(() => holds({ got: { direct: true }, want: { direct: true }, message: 'the job' })).not.toThrow();
    expect(holdsQuietly({ got: [1, 2], want: [1, 2], message: '' })).toBe(true);
  });

  it('asserts a list in order: the first that does not hold fails with its own message', () => {
    const ok = { got: 1, want: 1, message: 'first' };
    expect(() => holds([ok, { got: 2, want: 3, message: 'second' }, { got: 4, want: 5, message: 'third' }])).toThrow(/^second\ndiffers: 2 \(want 3\)/);
    expect(() => holds([ok, ok])).not.toThrow();
  });

  it("cuts a message that quotes megabytes of a program's output to its head and tail, and keeps the differences", () => {
    const message = `printed:\n${'x'.repeat(5_000_000)}\nexpected the kernel's answers`;
    const e = (() => { try { holds({ got: { a: 1 }, want: { a: 2 }, message }); } catch (x) { return x as Error; } return undefined; })();
    expect(e?.message.length).toBeLessThan(20_000);
    expect(e?.message).toMatch(/^printed:\nx+\n\[… \d+ characters cut …\]\nx+\nexpected the kernel's answers\ndiffers: a: 1 \(want 2\)/);
    expect(clip('short')).toBe('short');
  });
});
