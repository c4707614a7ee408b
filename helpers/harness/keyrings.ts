/**
 * The kernel keyrings of a contained program's uid (keyrings(7)). A contained
 * program runs as a uid of the run's own (contain.ts programUid); with
 * add_key(2) it can link keys into that uid's user keyring (`@u`) and user
 * session keyring (`@us`), which the kernel keeps for the uid until reboot,
 * whatever happens to its processes. Root cannot see or unlink another uid's
 * keys (key permissions have no override), so the harness acts as the uid:
 * `setpriv` to it, then keyctl(KEYCTL_READ) lists what both keyrings link (but
 * the user keyring, which the kernel links into the user session keyring)
 * and KEYCTL_UNLINK/KEYCTL_CLEAR unlink it (an unlinked key is garbage-collected).
 * The two keyrings themselves stay, empty, as for every uid that ever looked
 * one up. Only a uid `/proc/key-users` lists is ever entered: looking a
 * keyring up makes it. keyctl(1) is seldom installed; perl (Essential on
 * Debian and Ubuntu) makes the system call.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Destroyed } from './destroy.js';
import { systemTool } from './programs.js';

/** keyctl(2)'s number: arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h. */
const KEYCTL_NR: Partial<Record<string, number>> = { x64: 250, arm64: 219 };
const KEYCTL_GET_KEYRING_ID = 0;
const KEYCTL_CLEAR = 7;
const KEYCTL_UNLINK = 9;
const KEYCTL_READ = 11;
const USER_KEYRING = -4; // KEY_SPEC_USER_KEYRING
const USER_SESSION_KEYRING = -5; // KEY_SPEC_USER_SESSION_KEYRING

/** Does /proc/key-users list `uid` (has the kernel made a key or keyring of its)? */
export function keyUserListed(uid: number, keyUsers = readKeyUsers()): boolean {
  return keyUsers.split('\n').some((l) => Number(l.split(':')[0]) === uid && /^\s*\d+:/.test(l));
}

function readKeyUsers(): string {
  try { return readFileSync('/proc/key-users', 'utf8'); } catch { return ''; }
}

/**
 * As `uid`, list the keys its user keyring links and those its user session keyring links but the user keyring (which
 * the kernel links there when it makes them), and with `clear` unlink them all. Prints how many there were.
 */
const PERL = `use strict; my ($n, $clear) = @ARGV; $n += 0; # a string would go to syscall() as a pointer
sub ids { my $k = shift; my $s = syscall($n, ${KEYCTL_READ}, $k, 0, 0); die "keyctl(KEYCTL_READ, $k): $!\\n" if $s < 0; return () unless $s;
  my $buf = "\\0" x $s; my $r = syscall($n, ${KEYCTL_READ}, $k, $buf, $s); die "keyctl(KEYCTL_READ, $k): $!\\n" if $r < 0;
  return unpack("l*", substr($buf, 0, $r < $s ? $r : $s)) }
my $u = syscall($n, ${KEYCTL_GET_KEYRING_ID}, ${USER_KEYRING}, 0); die "keyctl(KEYCTL_GET_KEYRING_ID, user keyring): $!\\n" if $u < 0;
my @us = grep { $_ != $u } ids(${USER_SESSION_KEYRING}); my @uu = ids(${USER_KEYRING});
if ($clear) { for my $k (@us) { syscall($n, ${KEYCTL_UNLINK}, $k, ${USER_SESSION_KEYRING}) == 0 or die "keyctl(KEYCTL_UNLINK, $k, user session keyring): $!\\n" }
  syscall($n, ${KEYCTL_CLEAR}, ${USER_KEYRING}) == 0 or die "keyctl(KEYCTL_CLEAR, user keyring): $!\\n" }
print scalar(@us) + scalar(@uu), "\\n";`;

/** Run PERL as `uid` (no groups, no capabilities); undefined where this machine cannot (no perl, setpriv or known keyctl number). */
function asUid(uid: number, clear: boolean): { ok: boolean; out: string; err: string } | undefined {
  const nr = KEYCTL_NR[process.arch];
  const setpriv = systemTool('setpriv');
  const perl = systemTool('perl');
  if (!nr || !setpriv || !perl) return undefined;
  const r = spawnSync(setpriv, [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', perl, '-e', PERL, String(nr), clear ? '1' : '0'],
    { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim() };
}

/** How many keys `uid`'s user and user session keyrings link (0 when the uid has none; undefined where it cannot be read here). */
export function keysLinked(uid: number): number | undefined {
  if (!keyUserListed(uid)) return 0;
  const r = asUid(uid, false);
  return r?.ok ? Number(r.out.trim()) : undefined;
}

/** Unlink every key from `uid`'s user and user session keyrings. */
export function clearKeyrings(uid: number): Destroyed {
  if (!keyUserListed(uid)) return { gone: true };
  const r = asUid(uid, true);
  if (!r) return { gone: false, reason: `cannot act as uid ${uid} here (perl, setpriv and keyctl(2) on ${process.arch} are needed)` };
  if (!r.ok) return { gone: false, reason: r.err };
  const left = keysLinked(uid);
  return left === 0 ? { gone: true } : { gone: false, reason: `${left ?? 'an unknown number of'} keys still linked after KEYCTL_CLEAR` };
}

/** The commands a person runs to do the same (keyutils' keyctl). */
export const clearKeyringsCommand = (uid: number) => `setpriv --reuid=${uid} --regid=${uid} --clear-groups keyctl clear @u; setpriv --reuid=${uid} --regid=${uid} --clear-groups keyctl clear @us`;
