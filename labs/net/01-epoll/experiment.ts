/**
 * Net Lab 1's experiment: build the student's server (epoll_echo.c), the
 * given poll(2) server and the harness clients (echo_load.c, echo_edge.c),
 * make the lab's network namespaces (small socket buffers in one, buffers that
 * hold a whole burst in the other), and drive each case against the server:
 * 64 clients at once (`runCheck`), a client that stops reading (`runStall`:
 * its bytes, the other client's rounds, the server's CPU and wakeups over a
 * quiet window), clients that half-close (`runHalfClose`, with ss -tan's
 * CLOSE-WAIT), clients that leave without their echo (`runLeavers`), a burst
 * that waits whole in the stopped server's socket (`runBurst`, confirmed by
 * ss -tni), and the scaling sweep of N idle connections and one busy one
 * (`sweep`: CPU from /proc/<pid>/task/*\/schedstat and stat, syscalls from
 * raw_syscalls:sys_enter, epoll instances from /proc/<pid>/fdinfo). Never
 * throws for a wrong server: one that does not listen, or with which a client
 * does not get as far as the case needs, leaves `stuck` (the evidence says
 * why); judge.ts and the spec decide.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../../helpers/harness/compile.js';
import { type Background } from '../../../helpers/harness/exec.js';
import { labSource, REFERENCE_SRC } from '../../../helpers/harness/paths.js';
import { parseStat } from '../../../helpers/harness/proc-stat.js';
import { createNetns, type Netns } from '../../../helpers/kernel/netns.js';
import { descendants, listProcesses, listTasks, readStat, readStatus } from '../../../helpers/kernel/procfs.js';
import { makeTraceInstance } from '../../../helpers/kernel/tracefs.js';
import { parseSs, type SsSocket } from '../tcp-states.js';
import { epollInstances, triggerMode } from './epoll.js';
import { BURST, CHECK, HALFCLOSE, LEAVERS, STALL } from './judge.js';

export const EPOLL_PORT = 7100;
export const POLL_PORT = 7200;
/** Idle connection counts; the largest is capped by RLIMIT_NOFILE's hard limit. */
export const IDLE = [10, 100, 1000, 10_000];
/** Round trips of 64 bytes on the busy connection (fewer for poll at large N: each costs ms there). */
export const EXCHANGES = 3000;
const MIN_EXCHANGES = 100;
/** Keep the busy phase of the slow server under ~1 s: round trips = clamp(2 s / (µs per event measured at the previous N)). */
const BUSY_BUDGET_US = 1_000_000;
const CLK_TCK = 100;

/** A case that did not get as far as its evidence: why (the server did not listen, a client waited in vain). */
export interface Stuck { readonly stuck: string }

/** The built programs, the lab's namespaces and the descriptor limit. */
export interface EpollSetup {
  readonly ns: Netns;
  readonly burstNs: Netns;
  readonly bins: { readonly epoll: string; readonly poll: string; readonly loader: string; readonly edge: string };
  readonly hardNofile: number;
  /** IDLE capped by the hard RLIMIT_NOFILE. */
  readonly idle: number[];
}

export async function prepareEpoll(): Promise<EpollSetup> {
  const [e, p, l, x] = await Promise.all([
    buildProgram({ src: labSource('net/01-epoll/epoll_echo.c') }),
    buildProgram({ src: join(REFERENCE_SRC, 'net/poll_echo.c') }),
    buildProgram({ src: join(REFERENCE_SRC, 'net/echo_load.c') }),
    buildProgram({ src: join(REFERENCE_SRC, 'net/01-epoll/echo_edge.c') }),
  ]);
  const ns = await createNetns({ tag: 'ep', disableIpv6: true });
  // Small send buffers in the lab's namespace only (tcp_wmem/tcp_rmem are per network namespace): the server's
  // writes come back short often, as they do on a real network with slow clients. Receive buffers of up to
  // 256 KiB: a client's burst can wait in the server's socket far beyond what a few read()s take, so a server
  // that stops reading before EAGAIN (edge-triggered) loses its wakeup instead of being saved by a tiny buffer.
  await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.tcp_wmem=4096 8192 16384', 'net.ipv4.tcp_rmem=4096 131072 262144'], { timeoutMs: 10_000 });
  // The burst's own namespace: buffers that hold the whole burst and its echo (see BURST).
  const burstNs = await createNetns({ tag: 'epb', disableIpv6: true });
  await burstNs.exec('sysctl', ['-q', '-w', ...BURST.sysctls], { timeoutMs: 10_000 });
  // The hard limit bounds the largest N (this host: 20 000): N idle + 1 busy + the listener + stdio on each side.
  const limits = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+\d+\s+(\d+)/m);
  const hardNofile = limits ? Number(limits[1]) : 1024;
  const idle = IDLE.map((n) => Math.min(n, hardNofile - 64)).filter((n, i, a) => n > 0 && a.indexOf(n) === i);
  return { ns, burstNs, bins: { epoll: e.path, poll: p.path, loader: l.path, edge: x.path }, hardNofile, idle };
}

/** The server and every process it started (a worker made by fork() or clone() without CLONE_THREAD is one). */
function serverProcesses(pid: number): number[] {
  return [pid, ...descendants(listProcesses(), pid).map((p) => p.pid)];
}

/**
 * CPU time of the server, all its threads and all its processes: utime + stime from /proc/<pid>/stat (a thread
 * group's, clock ticks) and the scheduler's sum_exec_runtime summed over /proc/<pid>/task/<tid>/schedstat (ns;
 * /proc/<pid>/schedstat is the main thread's alone, and a server may do its work in another thread or process).
 */
function cpuTime(pid: number): { ticks: number; ns: number | undefined; runs: number } {
  let ticks = 0;
  let ns: number | undefined = 0;
  let runs = 0;
  for (const p of serverProcesses(pid)) {
    const st = readStat(p);
    ticks += st ? st.utime + st.stime : p === pid ? NaN : 0;
    for (const tid of listTasks(p)) {
      try {
        const f = readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ');
        ns! += Number(f[0]);
        runs += Number(f[2]);
      } catch { if (p === pid) { ns = undefined; break; } }
    }
    if (ns === undefined) break;
  }
  return { ticks, ns, runs };
}

/** epoll_wait, epoll_pwait, epoll_pwait2 by number (raw_syscalls:sys_enter prints `NR <nr> (<fd>, …)`). */
const EPOLL_WAIT_NRS: ReadonlySet<number> = new Set(process.arch === 'arm64' ? [22, 441] : [232, 281, 441]);

/** The epoll_wait-family calls among sys_enter events, by the epoll fd they wait on. */
function epollWaitsByFd(events: readonly { event: string; body: string }[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of events) {
    const m = e.event === 'sys_enter' ? /^NR (\d+) \(([0-9a-f]+)/.exec(e.body) : null;
    if (!m || !EPOLL_WAIT_NRS.has(Number(m[1]))) continue;
    const fd = parseInt(m[2]!, 16);
    out.set(fd, (out.get(fd) ?? 0) + 1);
  }
  return out;
}

const why = (e: unknown) => (e instanceof Error ? e.message : String(e));
const seed = () => String(1 + Math.floor(Math.random() * 2 ** 31));

/** Start a server and wait until it listens; a server that does not is `stuck`, with its output. */
async function startServer(ns: Netns, bin: string, port: number, nofile: number): Promise<Background | Stuck> {
  // The server needs a descriptor per connection: raise its soft RLIMIT_NOFILE to the hard limit (prlimit execs it: same pid).
  const bg = ns.background('prlimit', [`--nofile=${nofile}:${nofile}`, bin, String(port)], { timeoutMs: 10 * 60_000 });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ss = parseSs((await ns.exec('ss', ['-tln'], { timeoutMs: 10_000 })).stdout);
    if (ss.some((s) => s.state === 'LISTEN' && s.local.port === port)) break;
    if (Date.now() > deadline) return { stuck: `${bin} did not listen on port ${port} within 20 s (ss -tln shows ${ss.map((s) => s.line).join('; ') || 'nothing'}); its output:\n${bg.output()}` };
    const ended = await Promise.race([bg.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 20))]);
    if (ended) return { stuck: `${bin} exited before it listened on port ${port}:\n${bg.output()}` };
  }
  return bg;
}

const isStuck = (x: object): x is Stuck => 'stuck' in x;
const serverOutput = (server: Background) => server.output().trim() || '(none)';

/** What `echo_load check` printed against the server. */
export interface CheckRun {
  readonly report: string;
  readonly serverOutput: string;
}

/** 64 clients at once, every byte back, nobody starved (CHECK). */
export async function runCheck(s: EpollSetup): Promise<CheckRun | Stuck> {
  const server = await startServer(s.ns, s.bins.epoll, EPOLL_PORT, s.hardNofile);
  if (isStuck(server)) return server;
  const r = await s.ns.exec(s.bins.loader, ['check', '127.0.0.1', String(EPOLL_PORT), String(CHECK.clients), String(CHECK.rounds), String(CHECK.chunk)], { reject: false, timeoutMs: 120_000 });
  await server.stop();
  return { report: `${r.stdout}${r.stderr}`.trim(), serverOutput: serverOutput(server) };
}

/** What `echo_edge stall` saw, and what the kernel showed of the server meanwhile. */
export interface StallRun {
  /** Bytes the kernel took from the client that never read, before its writes stopped for 250 ms. */
  readonly pushed: number;
  /** Round trips another client completed while that one still read nothing, of `STALL.rounds`. */
  readonly otherRounds: number;
  /** The echo of the non-reading client once it read: bytes, of `pushed`, and mismatching bytes. */
  readonly slowEchoed: number;
  readonly slowMismatches: number;
  /** CPU of the server (all threads and processes, schedstat ns) over the quiet window, and the window (ms). */
  readonly quietCpuMs: number;
  readonly quietMs: number;
  /** Times the server's tasks were scheduled in (schedstat field 3, summed) over the quiet window: its wakeups. */
  readonly quietRuns: number;
  /** VmRSS of the server (kB) once the client had stopped. */
  readonly rssKb: number | undefined;
  /** The client's report, the server's sockets (ss -tn) while the client read nothing, the server's output. */
  readonly report: string;
  readonly ss: string;
  readonly serverOutput: string;
}

/** A client that stops reading while another goes on (STALL); the server's CPU and wakeups over the quiet window. */
export async function runStall(s: EpollSetup): Promise<StallRun | Stuck> {
  const port = EPOLL_PORT + 2;
  const server = await startServer(s.ns, s.bins.epoll, port, s.hardNofile);
  if (isStuck(server)) return server;
  const client = s.ns.background(s.bins.edge, ['stall', '127.0.0.1', String(port), String(STALL.push), String(STALL.rounds), seed()], { timeoutMs: 90_000 });
  let stalled: RegExpMatchArray;
  try {
    stalled = await client.waitFor(/^stalled pushed=(\d+)/, `the client that stops reading to be held back by port ${port}`, 60_000);
  } catch (e) {
    await client.stop();
    await server.stop();
    return { stuck: why(e) };
  }
  const rssKb = readStatus(server.pid)?.kb('VmRSS');
  // The server's only work now is an echo the client will not take: a server waiting in epoll_wait uses no CPU.
  const before = cpuTime(server.pid);
  const t0 = performance.now();
  const ss = (await s.ns.exec('ss', ['-tn'], { timeoutMs: 10_000 })).stdout;
  await new Promise((r) => setTimeout(r, Math.max(0, STALL.quietMs - (performance.now() - t0))));
  const after = cpuTime(server.pid);
  const quietMs = performance.now() - t0;
  process.kill(client.pid, 'SIGUSR1');
  const res = await client.exited;
  await server.stop();
  const report = `${client.stdout()}${client.stderr()}`.trim();
  const other = report.match(/^other rounds=(\d+) of/m);
  const slow = report.match(/^slow echoed=(\d+) of \d+ mismatches=(\d+)/m);
  const quietCpuMs = before.ns !== undefined && after.ns !== undefined ? (after.ns - before.ns) / 1e6 : (after.ticks - before.ticks) * (1000 / CLK_TCK);
  return {
    pushed: Number(stalled[1]), otherRounds: other ? Number(other[1]) : 0,
    slowEchoed: slow ? Number(slow[1]) : 0, slowMismatches: slow ? Number(slow[2]) : 0,
    quietCpuMs, quietMs, quietRuns: after.runs - before.runs, rssKb,
    report: `${report}${res.exitCode === 0 ? '' : ` (${res.reason}${res.signal ? ` ${res.signal}` : ''})`}`,
    ss: ss.split('\n').filter((l, i) => i === 0 || l.includes(`:${port} `)).join('\n'),
    serverOutput: serverOutput(server),
  };
}

/** What `echo_edge halfclose` printed, run after run, and the server's connections left in CLOSE-WAIT. */
export interface HalfCloseRun {
  /** A run of the clients failed (the later runs are not made). */
  readonly failed: boolean;
  readonly reports: string[];
  readonly closeWait: SsSocket[];
  readonly serverOutput: string;
}

/** Clients that half-close (HALFCLOSE): `runs` times `clients` at once. */
export async function runHalfClose(s: EpollSetup): Promise<HalfCloseRun | Stuck> {
  const port = EPOLL_PORT + 3;
  const server = await startServer(s.ns, s.bins.epoll, port, s.hardNofile);
  if (isStuck(server)) return server;
  const reports: string[] = [];
  let failed = false;
  for (let i = 0; i < HALFCLOSE.runs && !failed; i++) {
    const r = await s.ns.exec(s.bins.edge, ['halfclose', '127.0.0.1', String(port), String(HALFCLOSE.clients), seed()], { reject: false, timeoutMs: 60_000 });
    failed = r.exitCode !== 0;
    reports.push(`${r.stdout}${r.stderr}`.trim() + (failed ? `\n(exit ${r.exitCode})` : ''));
  }
  // The server's side of a connection the client closed and the server did not: CLOSE-WAIT, as the kernel shows it.
  const closeWait = parseSs((await s.ns.exec('ss', ['-tan'], { timeoutMs: 10_000 })).stdout).filter((x) => x.state === 'CLOSE-WAIT' && x.local.port === port);
  await server.stop();
  return { failed, reports, closeWait, serverOutput: serverOutput(server) };
}

/** How the server ended (undefined: it lived on), from its exit facts. */
export interface Ending { readonly signal?: string; readonly exitCode: number }

/** Clients that leave without their echo (LEAVERS), then 4 that half-close, if the server still lives. */
export interface LeaversRun {
  /** What `echo_edge leave` printed. */
  readonly left: string;
  /** How the server ended, if it did before the spec stopped it. */
  readonly ended?: Ending;
  /** `echo_edge halfclose` with 4 clients after the leavers (undefined when the server had ended). */
  readonly after?: { readonly exitCode: number; readonly output: string };
  readonly serverOutput: string;
}

export async function runLeavers(s: EpollSetup): Promise<LeaversRun | Stuck> {
  const port = EPOLL_PORT + 4;
  const server = await startServer(s.ns, s.bins.epoll, port, s.hardNofile);
  if (isStuck(server)) return server;
  const left = await s.ns.exec(s.bins.edge, ['leave', '127.0.0.1', String(port), String(LEAVERS), seed()], { reject: false, timeoutMs: 60_000 });
  const ended = await Promise.race([server.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
  const after = ended ? undefined : await s.ns.exec(s.bins.edge, ['halfclose', '127.0.0.1', String(port), '4', seed()], { reject: false, timeoutMs: 60_000 });
  const end = ended ?? await Promise.race([server.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
  await server.stop();
  return {
    left: `${left.stdout}${left.stderr}`.trim(),
    ...(end ? { ended: { signal: end.signal, exitCode: end.exitCode } } : {}),
    ...(after ? { after: { exitCode: after.exitCode, output: `${after.stdout}${after.stderr}`.trim() } } : {}),
    serverOutput: serverOutput(server),
  };
}

/** Stop (SIGSTOP) or continue every process of the server; stopping waits (≤ 5 s) until the kernel shows each task stopped (state T). */
async function pauseServer(pid: number, stop: boolean): Promise<{ pids: number[]; tasks: number; stopped: number }> {
  const pids = serverProcesses(pid);
  for (const p of pids) { try { process.kill(p, stop ? 'SIGSTOP' : 'SIGCONT'); } catch { /* exited */ } }
  const state = () => pids.flatMap((p) => listTasks(p).flatMap((t) => {
    try { return [parseStat(readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8')).state]; } catch { return []; }
  }));
  for (const deadline = Date.now() + 5_000; stop && state().some((s) => s !== 'T' && s !== 't') && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
  const now = state();
  return { pids, tasks: now.length, stopped: now.filter((s) => s === 'T' || s === 't').length };
}

/**
 * The connection to `port` in `ss -tni` (the info line after each socket): the client's side (peer port `port`, the one
 * from `clientPort`, else every established one) and the server's side of the same connection, with their queues.
 */
function ssQueues(output: string, port: number, clientPort?: number) {
  const lines = output.split('\n');
  const sockets = parseSs(lines.filter((l, i) => i === 0 || /^\S/.test(l)).join('\n')).map((s) => {
    const f = s.line.trim().split(/\s+/);
    const info = lines[lines.indexOf(s.line) + 1];
    return { ...s, recvQ: Number(f[1]), sendQ: Number(f[2]), text: `${s.line}${info && /^\s/.test(info) ? `\n${info.trim()}` : ''}` };
  });
  const client = sockets.filter((s) => s.peer.port === port && (clientPort === undefined ? s.state === 'ESTAB' : s.local.port === clientPort));
  const server = sockets.filter((s) => s.local.port === port && s.state !== 'LISTEN' && client.some((c) => c.local.port === s.peer.port));
  return { server, client, text: [...server, ...client].map((s) => s.text).join('\n') || `(no connection to port ${port}${clientPort ? ` from port ${clientPort}` : ''})` };
}

/** What `echo_edge burst` saw, and the server's socket as the kernel showed it before the server ran and after the echo. */
export interface BurstRun {
  /** The condition held in this try: all of the burst in the server's socket, nothing unsent, every task of the server stopped. */
  readonly setUp: boolean;
  readonly tries: number;
  readonly sent: number;
  /** Bytes in the server's socket (Recv-Q) before it ran; unsent bytes on the client's side (its report and Send-Q). */
  readonly queued: number;
  readonly stopped: string;
  readonly ssBefore: string;
  readonly echoed: number;
  readonly mismatches: number;
  /** Bytes still in the server's socket once the client had waited for its echo (Recv-Q). */
  readonly left: number;
  readonly ssAfter: string;
  readonly report: string;
  /** Each try that did not set the condition up, and why. */
  readonly failedTries: string[];
  readonly serverOutput: string;
}

/** A burst sent while the server is stopped (BURST), in the burst's own namespace. */
export async function runBurst(s: EpollSetup): Promise<BurstRun | Stuck> {
  const ns = s.burstNs;
  const port = EPOLL_PORT + 5;
  const server = await startServer(ns, s.bins.epoll, port, s.hardNofile);
  if (isStuck(server)) return server;
  const failedTries: string[] = [];
  let last: BurstRun | undefined;
  try {
    for (let t = 1; t <= BURST.tries && !last?.setUp; t++) {
      const paused = await pauseServer(server.pid, true);
      const client = ns.background(s.bins.edge, ['burst', '127.0.0.1', String(port), String(BURST.bytes), seed()], { timeoutMs: 30_000 });
      let m: RegExpMatchArray | undefined;
      try {
        m = await client.waitFor(/^burst sent=(\d+) unsent=(-?\d+)/m, `the burst to port ${port} to be sent`, 10_000);
      } catch { /* judged below from what was seen */ }
      const before = ssQueues((await ns.exec('ss', ['-tni'], { timeoutMs: 10_000 })).stdout, port);
      const sent = m ? Number(m[1]) : 0;
      const queued = before.server.length === 1 && before.client.length === 1 ? before.server[0]!.recvQ : 0;
      const stopped = `${paused.stopped} of ${paused.tasks} tasks of ${paused.pids.length} process(es) stopped`;
      const setUp = !!m && sent === BURST.bytes && Number(m[2]) === 0 && queued === sent && before.client.every((c) => c.sendQ === 0) && paused.stopped === paused.tasks && paused.tasks > 0;
      if (!setUp) failedTries.push(`try ${t}: ${m ? m[0] : 'the client did not report its burst'}; ${stopped}; ss -tni:\n${before.text}`);
      await pauseServer(server.pid, false);
      if (m) process.kill(client.pid, 'SIGUSR1');
      const done = m ? await client.waitFor(/^burst echoed=(\d+) of \d+ mismatches=(\d+).*$/m, `the echo of the burst on port ${port}`, 15_000).catch(() => undefined) : undefined;
      const after = ssQueues((await ns.exec('ss', ['-tni'], { timeoutMs: 10_000 })).stdout, port, before.client.length === 1 ? before.client[0]!.local.port : -1);
      try { process.kill(client.pid, 'SIGUSR1'); } catch { /* exited */ }
      await client.stop();
      last = {
        setUp, tries: t, sent, queued, stopped, ssBefore: before.text,
        echoed: done ? Number(done[1]) : 0, mismatches: done ? Number(done[2]) : 0,
        left: after.server.reduce((a, x) => a + x.recvQ, 0), ssAfter: after.text,
        report: `${client.stdout()}${client.stderr()}`.trim(), failedTries, serverOutput: '',
      };
    }
  } finally {
    await pauseServer(server.pid, false);
    await server.stop();
  }
  return { ...last!, serverOutput: serverOutput(server) };
}

/** One point of the scaling curve. */
export interface Sample {
  readonly idle: number;
  readonly exchanges: number;
  /** CPU ns of the server per round trip (schedstat; from stat ticks where schedstat is absent). */
  readonly nsPerEvent: number;
  readonly ticks: number;
  readonly syscallsPerEvent: number;
  readonly syscallsLost: boolean;
  readonly epollWatches: number;
  /** epoll_wait calls per round trip on the instance(s) that watch the N + 1 connections, and on any other fd. */
  readonly epollWaitsPerEvent: number;
  readonly otherWaits: string;
  readonly mode: string;
  readonly wallUs: number;
}

/** One point of the scaling curve: `idle` idle connections, then `exchanges` round trips on one more. */
async function measure(s: EpollSetup, server: Background, port: number, idle: number, exchanges: number, options: { readonly epoll: boolean }): Promise<Sample> {
  const { ns } = s;
  const load = ns.background(s.bins.loader, ['scale', '127.0.0.1', String(port), String(idle), String(exchanges), '64'], { timeoutMs: 5 * 60_000 });
  await load.waitFor(/^idle=\d+/, `${idle} idle connections to port ${port}`, 120_000);
  // connect() returns once the handshake is done; the server accepts on its own time: wait (up to 20 s) until it watches them.
  let epoll = epollInstances(server.pid);
  const watching = () => Math.max(0, ...epoll.map((e) => e.watches.length));
  for (const deadline = Date.now() + 20_000; options.epoll && watching() < idle + 1 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 50));
    epoll = epollInstances(server.pid);
  }
  const watches = watching();
  const watchingFds = new Set(epoll.filter((e) => e.watches.length >= idle + 1).map((e) => e.fd));
  const mode = triggerMode(epoll.flatMap((e) => e.watches));
  const trace = makeTraceInstance(['raw_syscalls/sys_enter'], { enable: false, bufferKb: 8192, tag: 'sys' });
  if (!trace) throw new Error('tracefs instance with raw_syscalls/sys_enter unavailable');
  try {
    // Every thread of every process of the server, and any it starts meanwhile: the server's system calls, not its main thread's.
    writeFileSync(trace.pidFile, serverProcesses(server.pid).flatMap((p) => listTasks(p)).join(' ') || String(server.pid));
    writeFileSync(join(trace.dir, 'options', 'event-fork'), '1');
    trace.setEnabled(true);
    const before = cpuTime(server.pid);
    process.kill(load.pid, 'SIGUSR1');
    const done = await load.waitFor(/^done exchanges=(\d+) us=(\d+)/, `${exchanges} round trips on port ${port}`, 240_000);
    const after = cpuTime(server.pid);
    trace.setEnabled(false);
    const { events, lost } = trace.read();
    process.kill(load.pid, 'SIGUSR1');
    await load.exited;
    const waits = epollWaitsByFd(events);
    const onWatching = [...waits].filter(([fd]) => watchingFds.has(fd)).reduce((a, [, n]) => a + n, 0);
    const otherWaits = [...waits].filter(([fd]) => !watchingFds.has(fd)).map(([fd, n]) => `${n} on fd ${fd}`).join(', ');
    const ns_ = before.ns !== undefined && after.ns !== undefined ? after.ns - before.ns : (after.ticks - before.ticks) * (1e9 / CLK_TCK);
    return {
      idle, exchanges, nsPerEvent: ns_ / exchanges, ticks: after.ticks - before.ticks,
      syscallsPerEvent: events.length / exchanges, syscallsLost: lost,
      epollWatches: watches, epollWaitsPerEvent: onWatching / exchanges, otherWaits, mode, wallUs: Number(done[2]),
    };
  } finally {
    await trace.release();
  }
}

/** The scaling sweep of one server: a point per N, in order. */
export interface Sweep {
  readonly pid: number;
  readonly samples: Sample[];
  /** /proc/loadavg once the sweep was over. */
  readonly loadavg: string;
  /** Why the sweep stopped before its last point (the server did not listen, a client waited in vain), if it did. */
  readonly stuck?: string;
}

/**
 * N idle connections and one busy one, N over `setup.idle`, against the student's server (`epoll`) or the given
 * poll(2) one. `enough(sample)` true ends the sweep at that point (a point the spec already fails: no need for the rest).
 */
export async function sweep(s: EpollSetup, which: 'epoll' | 'poll', enough: (x: Sample) => boolean = () => false): Promise<Sweep> {
  const port = which === 'epoll' ? EPOLL_PORT + 1 : POLL_PORT;
  const server = await startServer(s.ns, which === 'epoll' ? s.bins.epoll : s.bins.poll, port, s.hardNofile);
  if (isStuck(server)) return { pid: 0, samples: [], loadavg: '', stuck: server.stuck };
  const samples: Sample[] = [];
  let stuck: string | undefined;
  let perEventUs = 10;
  for (const n of s.idle) {
    // Each poll() call walks all N descriptors: size the busy phase from the previous point's cost.
    const exchanges = which === 'epoll' ? EXCHANGES
      : Math.max(MIN_EXCHANGES, Math.min(EXCHANGES, Math.round(BUSY_BUDGET_US / (perEventUs * (n / Math.max(1, samples.at(-1)?.idle ?? n))))));
    let x: Sample;
    try {
      x = await measure(s, server, port, n, exchanges, { epoll: which === 'epoll' });
    } catch (e) {
      if (/tracefs instance/.test(why(e))) throw e;
      stuck = why(e);
      break;
    }
    samples.push(x);
    perEventUs = x.nsPerEvent / 1000;
    if (enough(x)) break;
  }
  await server.stop();
  return { pid: server.pid, samples, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), ...(stuck ? { stuck } : {}) };
}
