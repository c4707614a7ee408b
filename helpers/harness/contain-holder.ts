/**
 * The mount namespace of a contained lab (helpers/harness/contain.ts), made
 * once per spec file: `unshare --mount` runs CONTAIN_SCRIPT as root, which
 * mounts the namespace and then execs `sleep infinity` to hold it; the lab's
 * programs enter it through /proc/<holder>/ns/mnt. The holder is a process
 * of the run (own process group, sandbox, recorded for the reaper) and is
 * stopped when the file ends; a mount that fails ends it with
 * `kl-contain: mount … failed`, and the spec file fails with that line.
 */
import { startBackground, type Background } from './background.js';
import { containmentEnabled, holderArgs, holderEnv, programUid, setContainment, UNSHARE, type Containment } from './contain.js';
import { clearKeyrings } from './keyrings.js';

let holder: Background | undefined;

/** Make the namespace for `c` and contain this worker's lab programs in it (nothing when containment is off). */
export async function startContainment(c: Containment | undefined): Promise<void> {
  await stopContainment();
  if (!c || !containmentEnabled()) return;
  const bg = startBackground(UNSHARE!, holderArgs(c), { env: holderEnv(), autoStop: false, timeoutMs: 6 * 3600_000, failFast: false });
  holder = bg;
  try {
    await bg.waitFor(/^kl-contain-ready$/m, 'the contained mount namespace', 15_000);
  } catch (e) {
    await stopContainment();
    throw new Error(`${c.from}: the lab's mount namespace could not be made: ${bg.output().trim() || (e as Error).message}`);
  }
  setContainment({ ...c, holder: bg.pid });
}

/**
 * Leave containment and end the holder, then unlink what the program linked into its uid's keyrings (the kernel
 * keeps them past the namespace; what cannot be unlinked is said here, and again by the run's end). Idempotent.
 */
export async function stopContainment(): Promise<void> {
  setContainment(undefined);
  const h = holder;
  holder = undefined;
  if (!h) return;
  await h.stop('SIGKILL');
  const keys = clearKeyrings(programUid());
  if (!keys.gone) console.error(`[kernel-labs] the contained program's keys: ${keys.reason}`);
}
