/**
 * Net Lab 1's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `CheckRun`, `StallRun`, `HalfCloseRun`, `LeaversRun`,
 * `BurstRun`, `Sweep`) to the facts each test asserts, with the message that
 * shows the evidence. Unit-tested on made-up evidence in
 * tests/lab-units/net/01-epoll/judge.test.ts. The cases' sizes are here
 * because the messages name them; experiment.ts runs them.
 */
import type { BurstRun, CheckRun, HalfCloseRun, LeaversRun, Sample, StallRun, Sweep } from './experiment.js';

/** Correctness load: 64 clients x 8 rounds x 100 000 bytes, each client with a 4 KiB receive buffer. */
export const CHECK = { clients: 64, rounds: 8, chunk: 100_000 };
/**
 * A client that stops reading: it offers `push` bytes without reading any; the server may take `maxTaken` of them
 * (its socket buffers here hold ~50 KiB, the reference's own buffer 4 KiB: 4 MiB leaves room for any sane buffer).
 * Meanwhile another client does `rounds` round trips, and the server's CPU is read over `quietMs` in which its only
 * work is an echo nobody takes (measured here: 0 ms; a server spinning on EAGAIN: the whole window).
 */
export const STALL = { push: 16 * 1024 * 1024, maxTaken: 4 * 1024 * 1024, rounds: 50, quietMs: 250, maxCpuShare: 0.25, maxWakeups: 25 };
/** Clients that half-close: `clients` at once, `runs` times (each with its own random sizes and bytes). */
export const HALFCLOSE = { clients: 16, runs: 2 };
/** Clients that leave without their echo, one after another (the reference without SIGPIPE ignored died in 5 runs of 5). */
export const LEAVERS = 100;
/**
 * A burst that waits whole in the server's socket when it wakes: the server is stopped (SIGSTOP to every task of every
 * process of it: a busy server is descheduled the same way) before one client connects and sends `bytes`; the kernel
 * queues all of them in the server's socket, and the spec confirms it from the kernel (ss -tni: the server's Recv-Q is the
 * burst, the client has nothing unsent) before it lets the server run (else it tries again, `tries` times in all). Then
 * nothing more comes: no new data, and no EPOLLOUT edge either (the buffers of this test's own namespace, `sysctls`, take
 * the whole echo without a short write), so an edge-triggered server that stops reading before EAGAIN is never told of
 * the rest. 256 KiB: more than 64 reads of 4 KiB, or 4 of 64 KiB.
 */
export const BURST = { bytes: 256 * 1024, tries: 3, sysctls: ['net.ipv4.tcp_rmem=4096 1048576 4194304', 'net.ipv4.tcp_wmem=4096 1048576 4194304'] };
/**
 * epoll_wait() calls per round trip on the instance that watches the connections, at least. A message waits for its
 * echo, so a server waits about once per message (one that loops until EAGAIN may catch the next message in the same
 * turn: 0.48 seen); a thread or process per connection blocking in read() makes none.
 */
export const MIN_WAITS_PER_EVENT = 0.1;

/** 64 clients at once: echo_load's summary line, every byte back, none stalled or starved. */
export function check(r: CheckRun) {
  const m = r.report.match(/clients=(\d+) rounds=(\d+) bytes_sent=(\d+) bytes_echoed=(\d+) mismatches=(\d+) stalled=(\d+) starved=(\d+)/);
  const total = CHECK.clients * CHECK.rounds * CHECK.chunk;
  return {
    summary: m,
    facts: m ? { echoed: Number(m[4]), mismatches: Number(m[5]), stalled: Number(m[6]), starved: Number(m[7]) } : undefined,
    want: { echoed: total, mismatches: 0, stalled: 0, starved: 0 },
    message: `echo_load check ${CHECK.clients} clients x ${CHECK.rounds} rounds x ${CHECK.chunk} bytes against your server:\n${r.report}\nserver output:\n${r.serverOutput}`,
  };
}

/** A client that stops reading: the others are served, the server sleeps, and the stalled client's echo comes whole. */
export function stall(r: StallRun) {
  const problems: string[] = [];
  if (r.otherRounds < STALL.rounds) {
    problems.push(`while one client read nothing (its echo waiting in your server), another client got ${r.otherRounds} of ${STALL.rounds} echoes: ` +
      'a server that waits for one client (a write() that blocks, or a loop that retries write() until everything is sent) serves nobody else meanwhile; ' +
      'keep what the client cannot take yet and go back to epoll_wait() (EPOLLOUT says when there is room)');
  }
  if (r.quietCpuMs > STALL.maxCpuShare * r.quietMs) {
    problems.push(`your server used ${Math.round(r.quietCpuMs)} ms of CPU in ${Math.round(r.quietMs)} ms while its only work was an echo the client would not take ` +
      '(schedstat of every thread of every process it started): it spins, retrying write() on EAGAIN or polling with a zero timeout; sleep in epoll_wait() until the kernel reports room');
  }
  if (r.quietRuns > STALL.maxWakeups) {
    problems.push(`your server was woken ${r.quietRuns} times in ${Math.round(r.quietMs)} ms while it had nothing to do (schedstat field 3, the times its tasks ran, summed over every thread and process; ` +
      `${Math.round(r.quietCpuMs)} ms of CPU): it does not sleep in epoll_wait() until the kernel has news, it wakes on a timer (a short epoll_wait() timeout, a level-triggered EPOLLOUT that is always ready). ` +
      'Wait with timeout -1 and ask for EPOLLOUT only while an echo is pending (or edge-triggered)');
  }
  if (r.slowEchoed !== r.pushed || r.slowMismatches) {
    problems.push(`once it read, the client that had stopped reading got ${r.slowEchoed} of the ${r.pushed} bytes it had sent back (${r.slowMismatches} differing)`);
  }
  return {
    problems,
    message: `${problems.join('\n')}\necho_edge stall (a client with a 4 KiB receive buffer sends and never reads; once the kernel takes no more, another client does ${STALL.rounds} round trips of 1-2048 bytes, 2 s each; then the first reads its echo):\n${r.report}\n` +
      `your server's sockets while the client read nothing (ss -tn, Recv-Q/Send-Q: bytes waiting in the kernel):\n${r.ss}\nserver output:\n${r.serverOutput}`,
  };
}

/** The same client, held back by TCP: how much of its offer the server took. */
export function heldBack(r: StallRun) {
  return {
    pushed: r.pushed,
    message: `a client that never read could send ${r.pushed} bytes of the ${STALL.push} it offered before its writes stopped (your server's VmRSS then: ${r.rssKb ?? '?'} kB): ` +
      'your server went on reading from it although the echo could not be written, and kept what it read. Stop reading from a connection while its echo waits: ' +
      'its socket buffers then fill and TCP makes the client wait (flow control), whatever it sends\n' +
      `echo_edge stall:\n${r.report}\nyour server's sockets (ss -tn):\n${r.ss}`,
  };
}

/** Clients that half-close: did every run of them get its whole echo (and the connections closed)? */
export function halfClose(r: HalfCloseRun) {
  return {
    failed: r.failed,
    message: `echo_edge halfclose (${HALFCLOSE.clients} clients at once, ${HALFCLOSE.runs} times; each sends 16-272 KiB of random bytes, reading its echo lazily, ` +
      'shuts down its sending side right after its last byte and reads on until your server closes):\n' +
      `${r.reports.join('\n')}\n` +
      'read() returning 0 (and EPOLLRDHUP) means the client will send no more, not that it is gone: write back all it is owed, then close.' +
      (r.closeWait.length ? `\nss -tan: ${r.closeWait.length} connection(s) of your server still in CLOSE-WAIT (the client closed, your server did not):\n${r.closeWait.slice(0, 5).map((s) => s.line).join('\n')}` : '') +
      `\nserver output:\n${r.serverOutput}`,
  };
}

/** Clients that leave without their echo: how the server ended ('' = it lived on), and whether the next clients got theirs. */
export function leavers(r: LeaversRun) {
  const clients = `echo_edge leave: ${LEAVERS} clients, one after another, each sent 1-32 KiB and closed without reading its echo (every other one with a reset, SO_LINGER 0):\n${r.left}`;
  const end = r.ended;
  const how = !end ? '' : end.signal === 'SIGPIPE'
    ? 'it was killed by SIGPIPE: a write to a client that has closed fails with EPIPE and the kernel also sends SIGPIPE, whose default action ends the whole process. ' +
      'Ignore the signal (signal(7), SIG_IGN: the given main() does it; a workspace made before it did lacks that line) or send with MSG_NOSIGNAL, and treat EPIPE like any error of that one connection'
    : `it ${end.signal ? `was killed by ${end.signal}` : `exited with status ${end.exitCode}`}: an error on one connection (EPIPE, ECONNRESET) ends that connection, not the server`;
  return {
    how,
    howMessage: `your server ended while clients left without their echo: ${how}\n${clients}\nserver output:\n${r.serverOutput}`,
    after: r.after?.exitCode,
    afterMessage: `after ${LEAVERS} clients had left without their echo, 4 more clients (echo_edge halfclose) did not all get theirs:\n${r.after?.output ?? ''}\n${clients}`,
  };
}

/** A burst that waited whole in the stopped server's socket: was the case set up, and did all of it come back? */
export function burst(b: BurstRun) {
  return {
    setUpMessage: `the experiment could not set up the condition in ${BURST.tries} tries (not your server's doing: it was stopped meanwhile): ` +
      `a burst of ${BURST.bytes} bytes sent while the server was stopped must wait whole in its socket (ss -tni Recv-Q = ${BURST.bytes}, nothing unsent on the client's side) before it runs; run the lab again\n${b.failedTries.join('\n')}\nclient:\n${b.report}`,
    facts: { echoed: b.echoed, mismatches: b.mismatches, left: b.left },
    want: { echoed: b.sent, mismatches: 0, left: 0 },
    message: `a client sent ${b.sent} bytes at once while your server was stopped (SIGSTOP: ${b.stopped}, as a busy server is descheduled); the kernel queued all of them in your server's socket before it ran again ` +
      `(ss -tni: its Recv-Q ${b.queued}):\n${b.ssBefore}\nthen your server ran, and the client, sending nothing more, waited for its echo:\n${b.report}\n` +
      `after that, the kernel still held ${b.left} bytes your server never read in its socket (ss -tni Recv-Q):\n${b.ssAfter}\n` +
      'Edge-triggered (EPOLLET), the kernel reports a connection again only when something new happens on it (new data, room after a short write): ' +
      'a server that stops reading before read() fails with EAGAIN (a cap on reads per event, one read per wakeup) is never told about the rest. ' +
      'On every event read until EAGAIN (stop early only while an echo waits for room, and go on at its EPOLLOUT), or use level-triggered mode' +
      `\nserver output:\n${b.serverOutput}`,
  };
}

/** One point of the epoll sweep holds: the server watches the N + 1 connections through one instance and its round trips come out of it. */
export const pointHolds = (s: Sample) => s.epollWatches >= s.idle + 1 && s.epollWaitsPerEvent >= MIN_WAITS_PER_EVENT;

/** The messages of one point of the epoll sweep (`pid`: the server's). */
export function scalingPoint(s: Sample, pid: number) {
  return {
    watchesMessage: `with ${s.idle} idle connections and one busy one, the server's epoll instances (/proc/${pid}/fdinfo, anon_inode:[eventpoll]) watch ${s.epollWatches} descriptors (after waiting up to 20 s for the accepts); expected at least ${s.idle + 1}`,
    // Registered is not used: the round trips must come out of epoll_wait() on that instance.
    waitsMessage: `with ${s.idle} idle connections, raw_syscalls:sys_enter of every thread and process of your server shows ${s.epollWaitsPerEvent.toFixed(2)} epoll_wait() calls per round trip ` +
      `on the instance that watches the connections (${s.exchanges} round trips, at least ${MIN_WAITS_PER_EVENT} expected; waits on other descriptors: ${s.otherWaits || 'none'}): the echo did not come out of that instance. ` +
      'Registering every connection is not the point: wait for them all in one epoll_wait() loop and serve the ones it returns (not a thread or process per connection blocking in read(), nor one epoll instance each)',
  };
}

export function table(samples: readonly Sample[]): string {
  return samples.map((s) => `N=${s.idle}: ${Math.round(s.nsPerEvent)} ns CPU/event (${s.ticks} ticks over ${s.exchanges} round trips), ${s.syscallsPerEvent.toFixed(2)} syscalls/event${s.syscallsLost ? ' (trace lost events)' : ''}, epoll watches ${s.epollWatches}`).join('\n');
}

/** The whole epoll sweep: every point registered, CPU and syscalls per message from the smallest N to the largest. */
export function epollScaling(sw: Sweep) {
  const samples = sw.samples;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  return {
    registered: samples.map((s) => s.epollWatches >= s.idle + 1),
    cpuRatio: last.nsPerEvent / first.nsPerEvent,
    syscallRatio: last.syscallsPerEvent / first.syscallsPerEvent,
    message: `your server (${last.mode}), CPU from /proc/<pid>/task/*/schedstat and /proc/<pid>/stat, syscalls from raw_syscalls:sys_enter, both of every thread of the server and of every process it started:\n${table(samples)}\nload: ${sw.loadavg}`,
  };
}

/** The given poll(2) server's sweep beside the student's epoll one. */
export function pollComparison(poll: Sweep, epoll: readonly Sample[]) {
  const p = poll.samples;
  const pr = p.at(-1)!.nsPerEvent / p[0]!.nsPerEvent;
  const er = epoll.length ? epoll.at(-1)!.nsPerEvent / epoll[0]!.nsPerEvent : NaN;
  return {
    pollCpuRatio: pr,
    epollCpuRatio: er,
    pollSyscallRatio: p.at(-1)!.syscallsPerEvent / p[0]!.syscallsPerEvent,
    /** At the largest N the epoll server does a message for a fifth of poll's CPU (0 when there is no epoll sweep). */
    epollFarCheaper: epoll.length && epoll.at(-1)!.nsPerEvent * 5 < p.at(-1)!.nsPerEvent,
    message: `poll_echo (given):\n${table(p)}\nyour epoll server:\n${table(epoll)}\nload: ${poll.loadavg}`,
  };
}
