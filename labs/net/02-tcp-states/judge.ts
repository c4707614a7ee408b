/**
 * Net Lab 2's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`: the tracer's lines as socket lives, the kernel's own
 * record of the tracepoint, the connections and ss -tan) to the facts each
 * test asserts, with the message that shows the evidence. Unit-tested on
 * made-up runs in tests/lab-units/net/02-tcp-states/judge.test.ts.
 */
import { changeKey, otherProtocolLines, parseStateChange, parseStateChanges, timeBetween, type SocketLife, type StateChange } from '../tcp-states.js';
import type { Conn, Run } from './experiment.js';

/**
 * How far the traced SYN_SENT -> ESTABLISHED of the delayed connection may fall short of connect()'s own time (µs):
 * the kernel's changes happen inside the call, so only the syscall's entry and the wake-up after ESTABLISHED lie
 * between them (tens of µs here; a busy 2-core machine may delay that wake-up by a few ms). A clock 2.4 % slow
 * (nsecs >> 10) loses 24 ms over the 1 s retransmission; 15 ms keeps room for the scheduler.
 */
export const CONNECT_SLACK_US = 15_000;
/**
 * How far the tracer's SYN_SENT → ESTABLISHED of the delayed connection may be from the kernel's own record of the
 * same two changes (trace_clock "mono", CLOCK_MONOTONIC as bpftrace's nsecs): the larger of this and
 * KERNEL_CLOCK_SLACK of the interval (both probes run at the same tracepoint hit, microseconds apart).
 */
export const KERNEL_CLOCK_SLACK_US = 200;
export const KERNEL_CLOCK_SLACK = 0.002;
/** The kernel's initial SYN retransmission timeout (TCP_TIMEOUT_INIT, include/net/tcp.h): 1 s. */
export const SYN_RTO_US = 1_000_000;

/** The trace lines of one connection (both ends), for messages. */
export function linesOf(run: Run, localPort: number): string {
  const mine = run.lives.filter((l) => l.local.port === localPort || l.remote.port === localPort);
  return mine.flatMap((l) => l.changes.map((c) => c.line)).join('\n') || '(no line with that port)';
}

export function clientLife(run: Run, c: Conn): SocketLife | undefined {
  return run.lives.find((l) => l.local.port === c.localPort && l.remote.port === run.port && l.states.includes('SYN_SENT'));
}

export function serverLife(run: Run, c: Conn): SocketLife | undefined {
  return run.lives.find((l) => l.local.port === run.port && l.remote.port === c.localPort);
}

export function evidence(run: Run, what: string): string {
  return `${what}\ntracer printed ${run.lines.length} lines${run.lost ? ` (lost ${run.lost} events)` : ''}; first lines:\n${run.lines.slice(0, 12).join('\n') || '(none)'}`;
}

/** The lives of a connection's server socket (the port local) and client socket (the port remote), by ports alone. */
function sidesOf(r: Run, c: Conn) {
  return {
    server: r.lives.find((l) => l.local.port === r.port && l.remote.port === c.localPort),
    client: r.lives.find((l) => l.local.port === c.localPort && l.remote.port === r.port),
  };
}

/** The handshake of the two ordinary connections: each side's first three states. */
export function handshake(r: Run) {
  return [r.clientFirst, r.serverFirst].map((c) => {
    const cl = clientLife(r, c);
    const sv = serverLife(r, c);
    return {
      facts: { client: cl?.states.slice(0, 3), server: sv?.states.slice(0, 3) },
      want: { client: ['CLOSE', 'SYN_SENT', 'ESTABLISHED'], server: ['LISTEN', 'SYN_RECV', 'ESTABLISHED'] },
      message: evidence(r, `connection from port ${c.localPort}: client socket ${cl ? cl.states.join(' → ') : 'not traced'}; server socket ${sv ? sv.states.join(' → ') : 'not traced'}\n${linesOf(r, c.localPort)}`),
    };
  });
}

/** Both close sequences: every socket's chain of old states, then each side's states after the handshake. */
export function closeSequences(r: Run) {
  const active = ['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'CLOSE'];
  const passive = ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSE'];
  // Each line's old state is the state the previous line of that socket entered (the kernel's oldstate is the
  // socket's state before the change): a tracer that makes the old state up breaks the chain.
  const broken: string[] = [];
  for (const c of [r.clientFirst, r.serverFirst, r.simultaneous, r.delayed, r.preexisting]) {
    const { server, client } = sidesOf(r, c);
    for (const life of c === r.preexisting ? [client, server] : [clientLife(r, c), serverLife(r, c)]) {
      life?.changes.forEach((ch, i) => {
        if (i > 0 && ch.from !== life.changes[i - 1]!.to) broken.push(`${life.changes[i - 1]!.line}\n${ch.line}   <- old state ${ch.from}, but the line before entered ${life.changes[i - 1]!.to}`);
      });
    }
  }
  return {
    broken,
    brokenMessage: evidence(r, `print the old state the tracepoint gives (args->oldstate): in each socket's lines, a change starts from the state the one before entered:\n${broken.slice(0, 6).join('\n')}`),
    sequences: [r.clientFirst, r.serverFirst].map((c) => ({
      facts: { client: clientLife(r, c)?.states.slice(2), server: serverLife(r, c)?.states.slice(2) },
      want: c.closer === 'c' ? { client: active, server: passive } : { client: passive, server: active },
      message: evidence(r, `${c.closer === 'c' ? 'the client' : 'the server'} closed first (client port ${c.localPort}):\n${linesOf(r, c.localPort)}`),
    })),
  };
}

/**
 * The connection established before the tracer started, closed by the server while it ran: the first change the tracer
 * saw of each side is its first line, and the old state there is the kernel's (ESTABLISHED), which the tracer never
 * saw the socket enter. The kernel's own record of the same changes is the harness's check that it made the case.
 */
export function earlyConnection(r: Run) {
  const c = r.preexisting;
  const want = { server: 'ESTABLISHED -> FIN_WAIT1', client: 'ESTABLISHED -> CLOSE_WAIT' };
  const first = (l: SocketLife | undefined) => (l ? `${l.changes[0]!.from} -> ${l.changes[0]!.to}` : undefined);
  const { server, client } = sidesOf(r, c);
  const recordedAs = (sport: number, dport: number) => r.kernel.filter((k) => k.protocol === 6 && k.sport === sport && k.dport === dport).map((k) => `${k.from} -> ${k.to}`);
  const kernel = { server: recordedAs(r.port, c.localPort)[0], client: recordedAs(c.localPort, r.port)[0] };
  const side = (name: string, l: SocketLife | undefined, w: string, k: string | undefined) =>
    `${name}: your first line ${l ? l.changes[0]!.line : '(none)'}; the kernel recorded ${k ?? '(nothing)'}${first(l) === w ? '' : `, want ${w}`}`;
  return {
    kernel,
    kernelMessage: `the kernel's own record of sock:inet_sock_set_state for port ${r.port} (the spec's setup, not your tracer) does not start the connection made before your tracer (client port ${c.localPort}) with the server's close:\n` +
      r.kernel.filter((k) => k.sport === c.localPort || k.dport === c.localPort).map((k) => `  ${changeKey(k)}`).join('\n'),
    facts: { server: first(server), client: first(client) },
    want,
    message: evidence(r, `a connection on port ${r.port} (client port ${c.localPort}) was established before your tracer started and closed by the server while it ran; ` +
      'the first change your tracer sees of each socket must show the state the socket was in (the tracepoint\'s old state), not one guessed from what it has seen:\n' +
      `${side('server socket', server, want.server, kernel.server)}\n${side('client socket', client, want.client, kernel.client)}\n${linesOf(r, c.localPort)}`),
  };
}

/** The simultaneous close: ss showed the server's side in CLOSING (the setup), and the trace shows it pass there. */
export function simultaneousClose(r: Run) {
  const c = r.simultaneous;
  const ssSide = r.ssSimultaneous.find((s) => s.local.port === r.port && s.peer.port === c.localPort);
  const sv = serverLife(r, c);
  return {
    ssState: ssSide?.state,
    ssMessage: `ss -tan in the server's namespace after both sides closed (the spec's setup, not your tracer):\n${r.ssSimultaneous.map((s) => s.line).join('\n')}`,
    states: sv?.states.slice(2),
    want: ['ESTABLISHED', 'FIN_WAIT1', 'CLOSING', 'CLOSE'],
    message: evidence(r, `both sides closed before either had the other's FIN (client port ${c.localPort}); ss -tan showed the server's side: ${ssSide?.line}\n` +
      `server socket in your trace: ${sv ? sv.states.join(' → ') : 'not traced'}\n${linesOf(r, c.localPort)}\n` +
      'every state the kernel reports must print by its own name (include/net/tcp_states.h): check the whole table, not only the states of an ordinary close'),
  };
}

/** Each printed line's ends against the ones the event holds (client, server, listener). */
export function addresses(r: Run) {
  const [cip, sip] = [r.hosts.left.ip, r.hosts.right.ip];
  const PORT = r.port;
  const wrong: string[] = [];
  const expectEnds = (life: SocketLife | undefined, what: string, want: (c: StateChange, i: number) => string) => {
    if (!life) { wrong.push(`${what}: not traced`); return; }
    life.changes.forEach((c, i) => {
      const got = `${c.saddr}:${c.sport} ${c.daddr}:${c.dport}`;
      if (got !== want(c, i)) wrong.push(`${what}: printed ${got}, the event holds ${want(c, i)}\n    ${c.line}`);
    });
  };
  for (const c of [r.clientFirst, r.serverFirst, r.simultaneous, r.delayed]) {
    // A client's first change (CLOSE -> SYN_SENT) comes before its port is chosen: sport 0 there.
    expectEnds(clientLife(r, c), `client socket of port ${c.localPort}`, (ch, i) => `${cip}:${i === 0 && ch.sport === 0 ? 0 : c.localPort} ${sip}:${PORT}`);
    // A server socket's first change (LISTEN -> SYN_RECV, in the clone of the listener) holds the connection's ends
    // on 6.18, but still the listener's on 6.1 (measured in the Debian guest): the kernel's record says which.
    const ends = `${sip}:${PORT} ${cip}:${c.localPort}`;
    const listener = `0.0.0.0:${PORT} 0.0.0.0:0`;
    const recorded = (ch: StateChange, e: string) => r.kernel.some((k) => k.protocol === 6 && `${k.saddr}:${k.sport} ${k.daddr}:${k.dport}` === e && k.from === ch.from && k.to === ch.to);
    expectEnds(serverLife(r, c), `server socket of port ${c.localPort}`, (ch, i) => (i === 0 && ch.from === 'LISTEN' && ch.to === 'SYN_RECV' && recorded(ch, listener) && !recorded(ch, ends) ? listener : ends));
  }
  const listeners = r.lives.filter((l) => l.local.port === PORT && l.remote.port === 0 && l.states.includes('LISTEN'));
  if (!listeners.length) wrong.push('listener: not traced');
  for (const l of listeners) expectEnds(l, 'listener', () => `0.0.0.0:${PORT} 0.0.0.0:0`);
  return {
    wrong,
    message: evidence(r, `the client's namespace has ${cip}, the server's ${sip} (chosen at random for this run), the port is ${PORT}; ` +
      `print the addresses and ports the tracepoint gives for each socket:\n${wrong.slice(0, 8).join('\n')}`),
  };
}

/** The trace against ss -tan: the listener, and TIME-WAIT on the side that closed first (which the trace saw in FIN_WAIT2). */
export function agreesWithSs(r: Run) {
  const PORT = r.port;
  // The first listener the tracer saw start (the early connection's was listening before the tracer started).
  const traceListen = r.lives.find((l) => l.local.port === PORT && l.remote.port === 0 && l.states.includes('LISTEN') && l.states[0] !== 'LISTEN');
  const ssListen = r.ssListening.find((s) => s.state === 'LISTEN' && s.local.port === PORT);
  // After FIN_WAIT2 -> CLOSE the socket is gone; a small TIME-WAIT socket holds the 4-tuple (ss shows it, the tracepoint does not).
  const clientTw = r.ssClientAfter.find((s) => s.local.port === r.clientFirst.localPort);
  const serverTw = r.ssServerAfter.find((s) => s.local.port === PORT && s.peer.port === r.serverFirst.localPort);
  return {
    listening: {
      facts: { trace: traceListen?.states.slice(0, 2), ss: ssListen?.state },
      want: { trace: ['CLOSE', 'LISTEN'], ss: 'LISTEN' },
      message: evidence(r, `ss -tan in the server's namespace while it listened:\n${r.ssListening.map((s) => s.line).join('\n')}\nthe listener in the trace: ${traceListen?.changes.map((c) => c.line).join(' | ') ?? '(none)'}`),
    },
    timeWait: {
      facts: { clientClosedFirst: clientTw?.state, serverClosedFirst: serverTw?.state },
      want: { clientClosedFirst: 'TIME-WAIT', serverClosedFirst: 'TIME-WAIT' },
      message: `ss -tan after the closes\nclient namespace:\n${r.ssClientAfter.map((s) => s.line).join('\n') || '(empty)'}\nserver namespace:\n${r.ssServerAfter.map((s) => s.line).join('\n') || '(empty)'}`,
    },
    // …and those are the very sockets the trace saw go through FIN_WAIT2.
    finWait2: {
      facts: [clientLife(r, r.clientFirst)?.states.includes('FIN_WAIT2'), serverLife(r, r.serverFirst)?.states.includes('FIN_WAIT2')],
      want: [true, true],
      message: evidence(r, 'the trace must show FIN_WAIT2 for the sockets ss shows in TIME-WAIT'),
    },
  };
}

/** The connection to the closed port: client sockets that went CLOSE -> SYN_SENT -> CLOSE. */
export function rstPath(r: Run) {
  const refused = r.lives.filter((l) => l.remote.port === r.port && l.states.join(' ') === 'CLOSE SYN_SENT CLOSE');
  return {
    refused: refused.length,
    message: evidence(r, `expected one client socket CLOSE -> SYN_SENT -> CLOSE (no ESTABLISHED) to port ${r.port}; client lives:\n${r.lives.filter((l) => l.remote.port === r.port).map((l) => `${l.sk} ${l.local.port}: ${l.states.join(' ')}`).join('\n')}`),
  };
}

/** Lines without the lab's port at either end (the decoys' lines, and any other socket of the machine): the first 10. */
export function strayPorts(r: Run) {
  const PORT = r.port;
  const stray = [...new Set([...parseStateChanges(r.lines).filter((c) => c.sport !== PORT && c.dport !== PORT).map((c) => c.line),
    ...r.lines.filter((l) => r.decoyPorts.some((d) => new RegExp(`:${d}\\b`).test(l)) && !new RegExp(`:${PORT}\\b`).test(l))])];
  return {
    stray: stray.slice(0, 10),
    message: `the tracer was started for port ${PORT}; connections to ports ${r.decoyPorts.slice(0, -1).join(', ')} and ${r.decoyPorts.at(-1)} (random, client ports ${r.decoys.map((d) => d.localPort).join(', ')}) were made meanwhile; ` +
      `${stray.length} lines have port ${PORT} at neither end: keep a socket when the given port is at either end, and no other`,
  };
}

/** The MPTCP connection: the kernel recorded sockets of another protocol (the setup), and the tracer printed none of them. */
export function onlyTcp(r: Run, mptcp: Conn) {
  const mp = r.kernel.filter((k) => k.protocol !== 6);
  const extra = otherProtocolLines(parseStateChanges(r.lines), r.kernel);
  const name = (p: number) => (p === 262 ? 'MPTCP (IPPROTO_MPTCP, 262)' : `protocol ${p}`);
  return {
    otherInKernel: mp.length,
    kernelMessage: `the kernel's record of sock:inet_sock_set_state for port ${r.port} (the spec's setup, not your tracer) holds no change of a socket that is not TCP, ` +
      `though an MPTCP connection was made from port ${mptcp.localPort}:\n${r.kernel.map((k) => `protocol ${k.protocol} ${k.saddr}:${k.sport} ${k.daddr}:${k.dport} ${k.from} -> ${k.to}`).join('\n')}`,
    printed: extra.flatMap((x) => x.lines.map((l) => l.line)).slice(0, 10),
    message: evidence(r, `an MPTCP connection was made on port ${r.port} (client port ${mptcp.localPort}); the kernel's record of the tracepoint (a tracefs instance) tells each change's protocol:\n` +
      extra.slice(0, 8).map((x) => `${x.key}: the kernel recorded ${x.tcp} TCP change${x.tcp === 1 ? '' : 's'} and ${[...x.other].map(([p, n]) => `${n} of ${name(p)}`).join(', ')}; you printed ${x.printed.length}:\n    ${x.printed.map((l) => l.line).join('\n    ')}`).join('\n') +
      `\nthe tracepoint reports every inet socket's state changes, not only TCP's: keep args->protocol == 6 (IPPROTO_TCP, include/uapi/linux/in.h) as well as the port (an MPTCP connection's subflows are TCP sockets and stay)`),
  };
}

/**
 * Lines the kernel never made: each printed change on the port (its ends and states) at most as often as the kernel's
 * own record of the tracepoint (a tracefs instance, on from before the tracer started until after it stopped) holds
 * it for a TCP socket; and no line naming an address at the port (`<ip>:<port>`) that is not a state change line.
 */
export function madeByKernel(r: Run) {
  const recorded = new Map<string, number>();
  for (const k of r.kernel) if (k.protocol === 6) recorded.set(changeKey(k), (recorded.get(changeKey(k)) ?? 0) + 1);
  const printed = new Map<string, StateChange[]>();
  for (const c of parseStateChanges(r.lines)) {
    if (c.sport !== r.port && c.dport !== r.port) continue; // another port's line: judged by "prints only the connections of the port"
    printed.set(changeKey(c), [...(printed.get(changeKey(c)) ?? []), c]);
  }
  const invented = [...printed].filter(([key, l]) => l.length > (recorded.get(key) ?? 0));
  const atPort = new RegExp(`\\d+\\.\\d+\\.\\d+\\.\\d+:${r.port}(?!\\d)`);
  const unparsed = r.lines.filter((l) => atPort.test(l) && !parseStateChange(l));
  return {
    invented: invented.map(([key, l]) => `${key}: printed ${l.length} times, the kernel's record has it ${recorded.get(key) ?? 0} times for a TCP socket: ${l.map((c) => c.line).slice(0, 3).join(' | ')}`),
    unparsed: unparsed.slice(0, 10),
    message: evidence(r, `the kernel's own record of sock:inet_sock_set_state for port ${r.port} (TCP sockets):\n${r.kernel.filter((k) => k.protocol === 6).map((k) => `  ${changeKey(k)}`).join('\n')}\n` +
      (invented.length ? `printed more often than the kernel made them (a line must be a change the tracepoint reported, not one made up or repeated):\n${invented.slice(0, 8).map(([key, l]) => `  ${key}: ${l.length} printed, ${recorded.get(key) ?? 0} recorded`).join('\n')}\n` : '') +
      (unparsed.length ? `lines naming an address at port ${r.port} that are not "<µs> <skaddr> <saddr>:<sport> <daddr>:<dport> <OLD> -> <NEW>" (nothing after the new state):\n  ${unparsed.slice(0, 5).join('\n  ')}` : '')),
  };
}

/** Connect latency from the trace: plain and with the first SYN dropped, against connect()'s own time and the clock's grain. */
export function connectLatency(r: Run) {
  const plain = [r.clientFirst, r.serverFirst].map((c) => { const l = clientLife(r, c); return l && timeBetween(l, 'SYN_SENT', 'ESTABLISHED'); });
  const dl = clientLife(r, r.delayed);
  const delayed = dl && timeBetween(dl, 'SYN_SENT', 'ESTABLISHED');
  const msg = evidence(r, `connect latency from the trace: plain ${plain.join(', ')} µs, first SYN dropped ${delayed} µs; connect() as the client timed it: ${r.clientFirst.connectUs}, ${r.serverFirst.connectUs}, ${r.delayed.connectUs} µs\ndelayed connection:\n${linesOf(r, r.delayed.localPort)}`);
  // A clock that counts microseconds: a µs clock's last digit is anything; a coarser one's (ms x 1000, 10 µs…) is always 0.
  const stamps = parseStateChanges(r.lines).map((c) => c.us);
  // The kernel's SYN_SENT -> ESTABLISHED happens inside the connect() call, so it takes no longer than connect() did
  // (+2 µs of rounding), and a handshake over the veth takes well over a microsecond.
  const outside = ([[r.clientFirst, plain[0]!], [r.serverFirst, plain[1]!], [r.delayed, delayed!]] as const)
    .filter(([c, t]) => t < 1 || t > c.connectUs + 2)
    .map(([c, t]) => `client port ${c.localPort}: SYN_SENT → ESTABLISHED ${t} µs in your trace, connect() took ${c.connectUs} µs`);
  // The kernel's own record of the delayed connection: its client's SYN_SENT -> ESTABLISHED (local port known), and the
  // last SYN_SENT to the port before it (made before the port is bound: its sport is 0).
  const est = r.kernel.findIndex((k) => k.from === 'SYN_SENT' && k.to === 'ESTABLISHED' && k.sport === r.delayed.localPort && k.dport === r.port);
  const syn = est < 0 ? undefined : r.kernel.slice(0, est).findLast((k) => k.to === 'SYN_SENT' && k.dport === r.port);
  const kernelUs = syn?.ts !== undefined && r.kernel[est]?.ts !== undefined ? Math.round((r.kernel[est]!.ts! - syn.ts) * 1e6) : undefined;
  const clockSlack = Math.max(KERNEL_CLOCK_SLACK_US, Math.round(KERNEL_CLOCK_SLACK * (kernelUs ?? 0)));
  return {
    kernelUs,
    kernelMessage: `the kernel's own record (sock:inet_sock_set_state) has no SYN_SENT → ESTABLISHED of the delayed connection (client port ${r.delayed.localPort}) after a SYN_SENT to port ${r.port}:\n${r.kernel.map((k) => `${k.ts?.toFixed(6)} ${k.saddr}:${k.sport} -> ${k.daddr}:${k.dport} ${k.from} -> ${k.to}`).join('\n')}`,
    clockOff: kernelUs === undefined || typeof delayed !== 'number' ? Infinity : Math.abs(delayed - kernelUs),
    clockSlack,
    clockMessage: `${msg}\nSYN_SENT → ESTABLISHED of the delayed connection: ${delayed} µs in your trace, ${kernelUs} µs in the kernel's own record of the same two state changes (CLOCK_MONOTONIC, the clock of bpftrace's nsecs): ` +
      `more than ${clockSlack} µs apart means your clock does not count real microseconds (nsecs / 1000 exactly, or elapsed / 1000)`,
    measured: plain.every((p) => typeof p === 'number' && p >= 0) && typeof delayed === 'number',
    message: msg,
    coarseClock: stamps.length >= 10 && stamps.every((us) => us % 10 === 0),
    coarseMessage: evidence(r, `all ${stamps.length} timestamps your tracer printed end in 0 ` +
      `(${stamps.slice(0, 6).join(', ')}…): its clock does not count microseconds (bpftrace's nsecs counts ns: the time in µs is nsecs / 1000)`),
    outside,
    outsideMessage: `${outside.join('\n')}\nthe handshake happens inside connect(), and over the veth it takes more than 1 µs: your times must lie between 1 µs and connect()'s (+2 µs of rounding)\n${msg}`,
    base: Math.max(...(plain as number[])),
    delayed: delayed!,
    /** The least the delayed connection's traced latency may be: connect()'s own time less the slack. */
    atLeast: r.delayed.connectUs - CONNECT_SLACK_US,
    slowClockMessage: `${msg}\nSYN_SENT → ESTABLISHED of the delayed connection is ${r.delayed.connectUs - delayed!} µs shorter in your trace than connect() took ` +
      `(${(100 * (1 - delayed! / r.delayed.connectUs)).toFixed(1)} %): more than ${CONNECT_SLACK_US} µs means your clock does not count real microseconds ` +
      '(bpftrace\'s nsecs counts ns: divide by 1000 exactly)',
  };
}

/**
 * The other direction of madeByKernel: each TCP change of the port the kernel recorded while the tracer was sure to
 * be attached and had time to print it (`run.window`: from its ready line to the end of the last connection) is
 * printed (ends and states), at least as often as recorded there. Lost events (bpftrace's "Lost N events") excuse as
 * many missing lines.
 */
export function everyChangePrinted(r: Run) {
  const inWindow = new Map<string, number>();
  for (const k of r.kernel) {
    if (k.protocol !== 6 || k.ts === undefined || k.ts < r.window.from || k.ts > r.window.to) continue;
    inWindow.set(changeKey(k), (inWindow.get(changeKey(k)) ?? 0) + 1);
  }
  const printed = new Map<string, number>();
  for (const c of parseStateChanges(r.lines)) printed.set(changeKey(c), (printed.get(changeKey(c)) ?? 0) + 1);
  const missing = [...inWindow].filter(([key, n]) => (printed.get(key) ?? 0) < n).map(([key, n]) => ({ key, recorded: n, printed: printed.get(key) ?? 0 }));
  const count = missing.reduce((a, m) => a + m.recorded - m.printed, 0);
  const recorded = [...inWindow.values()].reduce((a, n) => a + n, 0);
  return {
    recorded,
    missing: count > r.lost ? missing.map((m) => `${m.key}: the kernel recorded it ${m.recorded} time${m.recorded === 1 ? '' : 's'}, you printed ${m.printed}`) : [],
    message: evidence(r, `the kernel's own record of sock:inet_sock_set_state for port ${r.port} (a tracefs instance) holds ${recorded} changes of TCP sockets between your tracer's ready line and the end of the spec's last connection; ` +
      `${count} of them are missing from your lines${r.lost ? ` (bpftrace lost ${r.lost} events)` : ''} — print every change of a TCP socket with the port at either end, whatever the socket ` +
      `(a listener, a connection's socket, an MPTCP connection's TCP subflows) and whatever the states:\n${missing.slice(0, 10).map((m) => `  ${m.key}: recorded ${m.recorded}, printed ${m.printed}`).join('\n')}`),
  };
}

/**
 * Each printed line's socket address against the kernel's: the change (ports and states) it prints must be one the
 * kernel recorded for that very socket (`kernelSockets`: the record with skaddr). A socket id made up from the ports,
 * or a line held back and printed under another socket, is not the tracepoint's.
 */
export function socketIds(r: Run) {
  const key = (sk: string, c: { sport: number; dport: number; from: string; to: string }) => `${BigInt(sk).toString(16)} ${c.sport} ${c.dport} ${c.from} -> ${c.to}`;
  const recorded = new Set((r.kernelSockets ?? []).filter((k) => k.protocol === 6).map((k) => key(k.sk, k)));
  const bySk = new Map<string, Set<string>>();
  for (const k of r.kernelSockets ?? []) {
    if (k.protocol !== 6) continue;
    const c = `${k.sport} ${k.dport} ${k.from} -> ${k.to}`;
    bySk.set(c, (bySk.get(c) ?? new Set()).add(k.sk));
  }
  const wrong = parseStateChanges(r.lines).filter((c) => (c.sport === r.port || c.dport === r.port) && !recorded.has(key(c.sk, c)))
    .map((c) => `${c.line}   <- the kernel recorded ${c.sport} → ${c.dport} ${c.from} -> ${c.to} for ${[...(bySk.get(`${c.sport} ${c.dport} ${c.from} -> ${c.to}`) ?? [])].join(', ') || 'no socket'}`);
  return {
    recorded: recorded.size,
    wrong: wrong.slice(0, 10),
    message: evidence(r, `the kernel's own record of sock:inet_sock_set_state for port ${r.port} with each change's socket (skaddr, read from a tracefs instance's ring buffer): ` +
      `${wrong.length} of your lines name a socket for which the kernel recorded no such change (ports and states); print the tracepoint's args->skaddr, ` +
      `each change under the socket it happened to:\n${wrong.slice(0, 8).join('\n')}`),
  };
}
