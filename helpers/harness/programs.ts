/**
 * Program lookup: is a command startable (PATH search as execvp does), and
 * which arguments of a command line are lab programs (for fail-fast and the
 * gdb re-run, which leave system programs alone).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** Is `file` an executable this process could start (PATH search as execvp does)? */
export function findExecutable(file: string, env: Readonly<Record<string, string | undefined>> = process.env, cwd = process.cwd()): string | undefined {
  const ok = (p: string) => { try { accessSync(p, constants.X_OK); return statSync(p).isFile(); } catch { return false; } };
  if (file.includes('/')) { const p = resolve(cwd, file); return ok(p) ? p : undefined; }
  for (const dir of (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir || '.', file);
    if (ok(p)) return p;
  }
  return undefined;
}

/** A util-linux or coreutils tool at its fixed path (/usr/bin, else /bin), not looked up in PATH: setpriv, unshare, nsenter, env. */
export const systemTool = (name: string): string | undefined => [`/usr/bin/${name}`, `/bin/${name}`].find(existsSync);

/** Where the system's programs live: never a lab program. */
export const SYSTEM_DIRS = /^\/(usr|bin|sbin|lib|lib64|etc|sys|proc|dev|run|opt)\//;

/** The lab programs on a command line (absolute paths to files outside the system dirs), for fail-fast. */
export function programKey(file: string, args: readonly string[]): string | undefined {
  const progs = [file, ...args].filter((a) => isAbsolute(a) && !SYSTEM_DIRS.test(a) && (() => { try { return statSync(a).isFile(); } catch { return false; } })());
  return progs.length ? progs.join(' ') : undefined;
}
