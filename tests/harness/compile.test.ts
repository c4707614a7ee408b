import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { chmod, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBpfObject, buildProgram, firstDiagnosticLocation } from '../../helpers/harness/compile.js';
import { CompileError, LabError } from '../../helpers/harness/errors.js';
import { run } from '../../helpers/harness/exec.js';
import { makeTempDir } from '../../helpers/harness/resources.js';
import { runId } from '../../helpers/harness/run-state.js';

async function source(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  return path;
}

describe('compile', () => {
  it('builds a program, then hits the cache for the same source, flags and compiler', async () => {
    const dir = await makeTempDir('unit-cc');
    const nonce = randomBytes(6).toString('hex');
    const src = await source(dir, 'hello.c', `#include <stdio.h>\nint main(void) { puts("${nonce}"); return 0; }\n`);
    const first = await buildProgram({ src });
    expect(first.cached).toBe(false);
    expect((await run(first.path)).stdout).toBe(`${nonce}\n`);
    const again = await buildProgram({ src });
    expect(again).toMatchObject({ cached: true, path: first.path });
  });

  it('misses the cache when the flags or an included local header change', async () => {
    const dir = await makeTempDir('unit-cc');
    const nonce = randomBytes(6).toString('hex');
    await source(dir, 'v.h', '#define V 1\n');
    const src = await source(dir, 'prog.c', `#include <stdio.h>\n#include "v.h"\nint main(void) { printf("${nonce} %d\\n", V); return 0; }\n`);
    const a = await buildProgram({ src });
    const b = await buildProgram({ src, cflags: ['-DEXTRA=1'] });
    expect(b.cached).toBe(false);
    expect(b.path).not.toBe(a.path);
    await source(dir, 'v.h', '#define V 2\n');
    const c = await buildProgram({ src });
    expect(c.cached).toBe(false);
    expect((await run(c.path)).stdout).toBe(`${nonce} 2\n`);
  });

  it("fails with the compiler's message, file and line", async () => {
    const dir = await makeTempDir('unit-cc');
    const src = await source(dir, 'broken.c', `int main(void)\n{\n\treturn undeclared_${randomBytes(3).toString('hex')};\n}\n`);
    const e = (await buildProgram({ src }).catch((x: unknown) => x)) as CompileError;
    expect(e).toBeInstanceOf(CompileError);
    expect(e.code).toBe('E_COMPILE');
    expect(e.line).toBe(3);
    expect(e.file).toMatch(/broken\.c$/);
    expect(e.message).toMatch(/Compile failed at .*broken\.c:3: gcc/);
    expect(e.message).toMatch(/undeclared/);
  });

  it('builds a BPF object that llvm-objdump sees as eBPF with the named section', async () => {
    const dir = await makeTempDir('unit-bpf');
    const src = await source(dir, 'prog.c', `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int pass_${randomBytes(3).toString('hex')}(struct xdp_md *ctx) { return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n`);
    const o = await buildBpfObject({ src });
    const dump = await run('llvm-objdump', ['-h', o.path]);
    expect(dump.stdout).toMatch(/file format elf64-bpf/);
    expect(dump.stdout).toMatch(/\bxdp\b/);
  });

  it('compiles as nobody: a source cannot include a file only root can read, and the message names the student\'s file', async () => {
    // A directory of root's, mode 0700, with a "secret" in it: what #include "/root/…" would print into the report.
    const vault = await makeTempDir('unit-vault');
    await chmod(vault, 0o700);
    const secret = `kl_secret_${randomBytes(6).toString('hex')}`;
    await writeFile(join(vault, 'secret.h'), `#error ${secret}\n`);
    const dir = await makeTempDir('unit-cc');
    const src = await source(dir, 'peek.c', `#include "${join(vault, 'secret.h')}"\nint main(void) { return 0; }\n`);
    const e = (await buildProgram({ src }).catch((x: unknown) => x)) as CompileError;
    expect(e).toBeInstanceOf(CompileError);
    expect(e.message).toMatch(/Permission denied/);
    expect(e.message).not.toContain(secret);
    expect(e.file).toBe(src);
    expect(e.line).toBe(1);
    // A header reached by climbing out of the source's tree is not copied in: the compiler says it is not there.
    const climb = await source(dir, 'climb.c', `#include "${relative(dir, join(vault, 'secret.h'))}"\nint main(void) { return 0; }\n`);
    const c = (await buildProgram({ src: climb }).catch((x: unknown) => x)) as CompileError;
    expect(c).toBeInstanceOf(CompileError);
    expect(c.message).toMatch(/No such file or directory/);
    expect(c.message).not.toContain(secret);
    // Root reads a 0700 directory of root's: only a compiler without root's rights is refused. The copies it compiled are gone.
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`kl-${runId()}-cc-`))).toEqual([]);
  });

  it('refuses a source or a local header that is a link out of its tree: root would copy what nobody may read', async () => {
    const vault = await makeTempDir('unit-vault');
    await chmod(vault, 0o700);
    const secret = `kl_secret_${randomBytes(6).toString('hex')}`;
    await writeFile(join(vault, 'secret.c'), `#error ${secret}\nint main(void) { return 0; }\n`);
    const dir = await makeTempDir('unit-cc');
    // The source itself a link (git checks links out as links), and a header beside it that is one.
    await symlink(join(vault, 'secret.c'), join(dir, 'linked.c'));
    await symlink(join(vault, 'secret.c'), join(dir, 'linked.h'));
    const viaHeader = await source(dir, 'uses.c', '#include "linked.h"\nint main(void) { return 0; }\n');
    for (const src of [join(dir, 'linked.c'), viaHeader]) {
      const e = (await buildProgram({ src }).catch((x: unknown) => x)) as LabError;
      expect(e).toBeInstanceOf(LabError);
      expect(e.code).toBe('E_SOURCE');
      expect(e.message).toMatch(/leads out of .* not links out of it/);
      expect(e.message).not.toContain(secret);
    }
    // A link inside the tree is a file of the tree: it builds.
    await source(dir, 'real.h', '#define KL_ANSWER 0\n');
    await symlink(join(dir, 'real.h'), join(dir, 'alias.h'));
    const fine = await source(dir, 'fine.c', '#include "alias.h"\nint main(void) { return KL_ANSWER; }\n');
    expect((await buildProgram({ src: fine })).path).toMatch(/fine$/);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`kl-${runId()}-cc-`))).toEqual([]);
  });

  it('parses the first error location of gcc and clang diagnostics', () => {
    expect(firstDiagnosticLocation("x.c: In function 'main':\nx.c:7:5: error: expected ';'\n")).toEqual({ file: 'x.c', line: 7 });
    expect(firstDiagnosticLocation('/a/b.c:12:3: fatal error: bpf/bpf_helpers.h: No such file\n')).toEqual({ file: '/a/b.c', line: 12 });
    expect(firstDiagnosticLocation('ld: cannot find -luring\n')).toBeUndefined();
  });
});
