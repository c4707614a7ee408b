/**
 * The kernel keyrings of a contained program's uid (keyrings(7)). A contained
 * program runs as a uid of the run's own (contain.ts programUid); with
 * add_key(2) it can link keys into that uid's user keyring (`@u`) and user
 * session keyring (`@us`) — which the kernel keeps for the uid until reboot,
 * whatever happens to its processes — and into the session keyring it
 * inherited from the harness, where the harness has one (pam_keyinit).
 *
 * What the uid owns is counted as root in `/proc/key-users` (its `nkeys`: the
 * two user keyrings, made together the first time one is looked up, and its
 * keys). Root cannot unlink another uid's keys from that uid's keyrings (key
 * permissions have no override), so a perl child (keyctl(1) is seldom
 * installed; perl is Essential on Debian and Ubuntu) first unlinks, as root,
 * the uid's keys from the session keyring it shares with the harness, then
 * drops to the uid itself — setgid/setuid in the process, not setpriv and an
 * exec: a process whose uid changed is not dumpable, so a live process of the
 * uid cannot open its `/proc/<pid>/root` (the host's root) — and unlinks what
 * `@u` and `@us` link (but `@u` itself, which the kernel links into `@us`).
 * An unlinked key is garbage-collected; the two keyrings stay, empty, as for
 * every uid that ever looked one up.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleepSync, type Destroyed } from './destroy.js';
import { systemTool } from './programs.js';

/** keyctl(2)'s number: arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h. */
const KEYCTL_NR: Partial<Record<string, number>> = { x64: 250, arm64: 219 };
/** The user keyring and the user session keyring. */
const USER_KEYRINGS = 2;

/** How many keys and keyrings `uid` owns (`nkeys` in /proc/key-users; 0 when it is not listed). */
export function ownedKeys(uid: number, keyUsers = readKeyUsers()): number {
  const line = keyUsers.split('\n').find((l) => Number(l.split(':')[0]) === uid && /^\s*\d+:/.test(l));
  return Number(/:\s*\d+\s+(\d+)\//.exec(line ?? '')?.[1] ?? 0);
}

/** The keys `uid` owns beyond its two user keyrings: what a contained program of that uid left. */
export const keysLeft = (uid: number, keyUsers = readKeyUsers()): number => Math.max(0, ownedKeys(uid, keyUsers) - USER_KEYRINGS);

function readKeyUsers(): string {
  try { return readFileSync('/proc/key-users', 'utf8'); } catch { return ''; }
}

/** Perl, started as root: ARGV = keyctl's number, the uid. Prints what it unlinked. */
const PERL = `use strict; use POSIX (); my ($n, $uid) = map { $_ + 0 } @ARGV; # numbers: a string would go to syscall() as a pointer
my @done;
sub ids { my $k = shift; my $s = syscall($n, 11, $k, 0, 0); return () if $s <= 0; # KEYCTL_READ: its size, then its ids
  my $buf = "\\0" x $s; my $r = syscall($n, 11, $k, $buf, $s); return () if $r < 0;
  return unpack("l*", substr($buf, 0, $r < $s ? $r : $s)) }
sub owner { my $k = shift; my $buf = "\\0" x 4096; my $r = syscall($n, 6, $k, $buf, 4096); # KEYCTL_DESCRIBE: type;uid;gid;perm;desc
  return -1 if $r < 0; my @f = split /;/, substr($buf, 0, $r); return $f[1] }
sub unlink_from { my ($k, $ring, $what) = @_; syscall($n, 9, $k, $ring) == 0 or die "keyctl(KEYCTL_UNLINK, $k, $what): $!\\n"; push @done, "$k from $what" }
# as root: the uid's keys in the session keyring the harness shares with its programs
for my $k (ids(-3)) { unlink_from($k, -3, "the harness's session keyring") if owner($k) == $uid }
# as the uid (no exec after the change: the process stays undumpable)
$) = "$uid $uid"; POSIX::setgid($uid) or die "setgid: $!\\n"; POSIX::setuid($uid) or die "setuid: $!\\n";
die "still uid $<\\n" unless $< == $uid && $> == $uid;
my $u = syscall($n, 0, -4, 0); # KEYCTL_GET_KEYRING_ID of @u
for my $k (ids(-5)) { unlink_from($k, -5, "its user session keyring") unless $k == $u }
for my $k (ids(-4)) { unlink_from($k, -4, "its user keyring") }
print join("\\n", @done), "\\n";`;

/**
 * Unlink the keys a contained program of `uid` left (nothing is run when it owns none beyond its keyrings). Gone
 * when `/proc/key-users` shows no more than the two keyrings afterwards (garbage collection is quick but not
 * synchronous: up to 2 s). What stays — keys whose permissions the program took from its own uid — stays until reboot.
 */
export function clearKeyrings(uid: number): Destroyed {
  // Run whenever the uid owns anything: a key in the harness's session keyring may be all it owns, with no keyring of
  // its own yet (the count below would not tell); afterwards both keyrings exist (a lookup as the uid makes them).
  if (!ownedKeys(uid)) return { gone: true };
  const left = keysLeft(uid);
  const nr = KEYCTL_NR[process.arch];
  const perl = systemTool('perl');
  if (!nr || !perl) return left ? { gone: false, reason: `uid ${uid} owns ${left} key(s); unlinking them needs perl and keyctl(2)'s number on ${process.arch}` } : { gone: true };
  const r = spawnSync(perl, ['-e', PERL, String(nr), String(uid)], { encoding: 'utf8', timeout: 10_000 });
  const said = (r.stderr || r.error?.message || '').trim();
  for (let t = 0; t < 40 && keysLeft(uid); t++) sleepSync(50);
  const still = keysLeft(uid);
  return still ? { gone: false, reason: `uid ${uid} still owns ${still} key(s) beyond its keyrings after unlinking${said ? ` (${said})` : ''}: they stay until reboot` } : { gone: true };
}

/** The commands a person runs to do the same (keyutils' keyctl; the second also unlinks @u from @us). */
export const clearKeyringsCommand = (uid: number) => `setpriv --reuid=${uid} --regid=${uid} --clear-groups keyctl clear @u; setpriv --reuid=${uid} --regid=${uid} --clear-groups keyctl clear @us`;
