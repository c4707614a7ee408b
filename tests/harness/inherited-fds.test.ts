import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/harness/paths.js';

/** A node process started with descriptors 7 and 251 open without close-on-exec, as a CI runner's log pipe is. */
function childFds(close: boolean): string[] {
  const module = join(REPO_ROOT, 'helpers/harness/inherited-fds.ts');
  const code = `import(${JSON.stringify(module)}).then((m) => { ${close ? 'm.closeInheritedDescriptors();' : ''} `
    + `process.stdout.write(require('node:child_process').execFileSync('ls', ['/proc/self/fd'], { encoding: 'utf8' })); });`;
  const out = execFileSync('bash', ['-c', 'exec 7</dev/null 251</dev/null; exec "$@"', 'bash', process.execPath, '--import', 'tsx', '-e', code],
    { encoding: 'utf8', cwd: REPO_ROOT });
  return out.split(/\s+/).filter(Boolean);
}

describe('descriptors inherited from above the run', () => {
  it('reach a program the run starts unless the run closes them', () => {
    expect(childFds(false)).toContain('251');
  });

  it('are closed at the start of the run: its programs see none of them', () => {
    const fds = childFds(true);
    expect(fds).not.toContain('251');
    expect(fds.filter((f) => Number(f) > 3), `descriptors a child of the run sees: ${fds.join(' ')}`).toEqual([]);
  });
});
