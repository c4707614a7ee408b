/**
 * The build cache's key depends on content, not on where the content is: the
 * same sources in two workspaces (each teeth run copies the reference into a
 * fresh temp dir) share one entry; different sources, headers or libraries don't.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram, cacheKey } from '../../helpers/harness/compile.js';
import { makeTempDir } from '../../helpers/harness/resources.js';

const base = { compiler: 'gcc', version: 'gcc 1', args: ['-O2', '__SRC__'] };

async function workspace(files: Record<string, string>): Promise<string> {
  const dir = await makeTempDir('unit-cc-ws');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), text);
  }
  return dir;
}

describe('compile cache key', () => {
  it('is the same for the same files under two different roots', async () => {
    const at = (root: string) => new Map([[`${root}/lab/prog.c`, 'int main(void) { return 0; }\n'], [`${root}/lab/sub/h.h`, '#define H 1\n']]);
    const a = await cacheKey({ ...base, files: at('/tmp/wsA'), root: '/tmp/wsA/lab' });
    const b = await cacheKey({ ...base, files: at('/tmp/lab-fixture-xyz/c'), root: '/tmp/lab-fixture-xyz/c/lab' });
    expect(b).toBe(a);
  });

  it('differs when a header with the same text sits at another place relative to the source', async () => {
    const files = (h: string) => new Map([['/w/lab/prog.c', 'int main(void) { return 0; }\n'], [h, '#define H 1\n']]);
    const here = await cacheKey({ ...base, files: files('/w/lab/h.h'), root: '/w/lab' });
    const sub = await cacheKey({ ...base, files: files('/w/lab/sub/h.h'), root: '/w/lab' });
    expect(sub).not.toBe(here);
  });

  it('names files by base name when no root is given (the keys of existing entries)', async () => {
    const a = await cacheKey({ ...base, files: new Map([['/x/prog.c', 'int main(void) { return 0; }\n']]) });
    const b = await cacheKey({ ...base, files: new Map([['/y/z/prog.c', 'int main(void) { return 0; }\n']]), root: '/y/z' });
    expect(b).toBe(a);
  });
});

describe('compile cache across workspaces', () => {
  it('a second workspace with the same sources hits the first one\'s entry; other content or libraries miss', async () => {
    const nonce = randomBytes(6).toString('hex');
    const files = {
      'lab/prog.c': `#include <stdio.h>\n#include "inc/v.h"\nint main(void) { printf("${nonce} %d\\n", V); return 0; }\n`,
      'lab/inc/v.h': '#define V 1\n',
    };
    const a = await workspace(files);
    const b = await workspace(files);
    const first = await buildProgram({ src: join(a, 'lab/prog.c') });
    expect(first.cached).toBe(false);
    const second = await buildProgram({ src: join(b, 'lab/prog.c') });
    expect(second).toMatchObject({ cached: true, path: first.path });

    const c = await workspace({ ...files, 'lab/inc/v.h': '#define V 2\n' });
    const changed = await buildProgram({ src: join(c, 'lab/prog.c') });
    expect(changed.cached).toBe(false);
    expect(changed.path).not.toBe(first.path);

    const linked = await buildProgram({ src: join(b, 'lab/prog.c'), ldlibs: ['-lm'] });
    expect(linked.cached).toBe(false);
    expect(linked.path).not.toBe(first.path);
  });
});
