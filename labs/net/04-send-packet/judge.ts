/**
 * Net Lab 4's verdicts: pure functions from the experiment's evidence
 * (experiment.ts `Run`) to what each test asserts, with the message that shows
 * the evidence. Unit-tested in tests/lab-units/net/04-send-packet/judge.test.ts.
 */
import { addressesIn, describeEvent, firstEvent, NET_POINTS, sameLength, type Classified, type Datagram, type DatagramPath, type NetEvent, type NetPoint } from './skb-path.js';
import type { Run } from './experiment.js';

/** Header lengths (include/uapi/linux/if_ether.h ETH_HLEN, struct iphdr without options, struct udphdr). */
export const ETH = 14;
export const IPV4 = 20;
export const UDP = 8;
/** The tracepoints every correct tracer prints for the datagram, in the kernel's order; netif_rx (between queue and xmit on a veth) is welcome, not required. */
export const REQUIRED: readonly NetPoint[] = ['net_dev_queue', 'net_dev_xmit', 'netif_receive_skb'];

/** The skb's length at `point`: the sender's device sees the whole frame; the peer's eth_type_trans() (in veth's __dev_forward_skb) pulls the Ethernet header before netif_rx. */
export function expectedLen(d: Datagram, point: NetPoint): number {
  return d.payload + UDP + IPV4 + (d.ipOptions ?? 0) + (point === 'net_dev_queue' || point === 'net_dev_xmit' ? ETH : 0);
}

/** "payload + 8 + 20 (+ options) (+ 14)" for messages. */
export function lenSum(d: Datagram, point: NetPoint): string {
  return `${d.payload} + ${UDP} + ${IPV4}${d.ipOptions ? ` + ${d.ipOptions} (IP options)` : ''}${point === 'net_dev_queue' || point === 'net_dev_xmit' ? ` + ${ETH}` : ''}`;
}

export function kernelPath(p: DatagramPath): string {
  return NET_POINTS.map((pt) => `  ${describeEvent(p.events[pt])}`).join('\n');
}

/** A failure's message: what is wrong, the lab's datagrams, the kernel's paths and the tracer's first lines. */
export function evidence(r: Run, port: number, what: string): string {
  const lab = r.targets.map((p) => {
    const d = p.datagram;
    return `${d.label}: ${d.payload} bytes of payload${d.ipOptions ? `, an IPv4 header of ${IPV4 + d.ipOptions} bytes (IHL ${(IPV4 + d.ipOptions) / 4})` : ''}, ${d.from} -> ${d.to}; the kernel recorded:\n${kernelPath(p)}`;
  });
  return `${what}\nthe lab's datagrams to port ${port}:\n${lab.join('\n')}\n`
    + `your tracer printed ${r.output.length} lines${r.lost ? ` (bpftrace lost ${r.lost} events)` : ''}; first lines:\n${r.output.slice(0, 16).join('\n') || '(none)'}`;
}

/** The tracer's lines that are events of one of the lab's datagrams (or of `target`), at `point`. */
export function targetLines(r: Run, point?: NetPoint, target?: DatagramPath): Classified[] {
  return r.lines.filter((c) => c.path !== undefined && (target ? c.path === target : r.targets.includes(c.path)) && (point === undefined || c.line.point === point));
}

/** The kernel's own record, datagram by datagram: each event's length and their order (the control). */
export function kernelRecord(r: Run) {
  const msg = `kernel record (${r.record.length} events on the lab's devices${r.recordLost ? ', ring buffer overflowed' : ''}):\n${r.paths.map((p) => `${p.datagram.label}, ${p.datagram.payload} bytes:\n${kernelPath(p)}`).join('\n')}`;
  return r.paths.map((p) => {
    // A frame past the qdisc passes no net_dev_queue nor net_dev_xmit.
    const points = p.datagram.bypass ? (['netif_rx', 'netif_receive_skb'] as const) : NET_POINTS;
    return {
      lengths: points.map((pt) => ({ len: p.events[pt]?.len, expected: expectedLen(p.datagram, pt), message: `${p.datagram.label} at ${pt}\n${msg}` })),
      // Read once the lengths hold: every event is there.
      order: () => {
        const order = points.map((pt) => p.events[pt]!.index);
        return { order, sorted: [...order].sort((a, b) => a - b), message: `${p.datagram.label}: order of the events in the record\n${msg}` };
      },
    };
  });
}

/** The tracer's lines for each lab's datagram: which required tracepoints have none, then their order. */
export function followed(r: Run, port: number) {
  const first = (t: DatagramPath, pt: NetPoint) => targetLines(r, pt, t).find((c) => c.line.dev !== undefined);
  const missing = r.targets.flatMap((t) => REQUIRED.filter((pt) => !first(t, pt)).map((pt) => ({ t, pt })));
  const near = missing.map(({ t, pt }) => {
    const e = t.events[pt]!;
    const same = r.output.filter((l) => l.toLowerCase().includes(e.skb) && l.includes(pt));
    const ihl = t.datagram.ipOptions ? ` (its IPv4 header is ${IPV4 + t.datagram.ipOptions} bytes: the UDP header starts after the IP options)` : '';
    const why = r.together.includes(t)
      ? ' (another lab\'s datagram was queued while this one waited in the bucket: follow each one by its own skb address, not one datagram "in flight")'
      : t === r.rpsTarget && e.cpu !== undefined && e.cpu !== t.events.net_dev_queue?.cpu
        ? ` (recorded on CPU ${e.cpu}, its net_dev_queue on CPU ${t.events.net_dev_queue?.cpu}: what you recorded at net_dev_queue must be seen from every CPU)`
        : '';
    return `${t.datagram.label}: no line of yours is ${describeEvent(e)}${ihl}${why}${same.length ? ` (lines with that tracepoint and address: ${same.join(' | ')}; they must name the device ${e.dev})` : ''}`;
  });
  return {
    missing: missing.map(({ t, pt }) => `${t.datagram.label}: ${pt}`),
    missingMessage: evidence(r, port, near.join('\n')),
    // Read once nothing is missing.
    order: () => {
      const each = r.targets.map((t) => {
        const at = REQUIRED.map((pt) => first(t, pt)!.line.index);
        const rx = first(t, 'netif_rx');
        return { t, at, sorted: [...at].sort((a, b) => a - b), rxBetween: !rx || (rx.line.index > at[0]! && rx.line.index < at[2]!), rx };
      });
      const wrong = each.filter((x) => x.at.some((v, i) => v !== x.sorted[i]));
      const rxWrong = each.filter((x) => !x.rxBetween);
      return {
        at: each.map((x) => x.at),
        sorted: each.map((x) => x.sorted),
        message: evidence(r, port, wrong.map((x) => `your lines for ${x.t.datagram.label} come in the order ${REQUIRED.map((pt, i) => `${pt} (line ${x.at[i]! + 1})`).join(', ')}; the kernel passed them queue -> xmit -> receive`).join('\n')),
        rx: {
          between: rxWrong.length === 0,
          message: evidence(r, port, rxWrong.map((x) => `your netif_rx line for ${x.t.datagram.label} (line ${x.rx!.line.index + 1}) must come between its net_dev_queue and netif_receive_skb, as in the kernel`).join('\n')),
        },
      };
    },
  };
}

/** The lengths the tracer printed for the lab's datagram against the kernel's. */
export function lengths(r: Run, port: number) {
  const mine = targetLines(r);
  const wrong = mine.filter((c) => c.line.len !== c.event!.len).map((c) => `line ${c.line.index + 1} "${c.line.line}": ${c.line.len === undefined ? 'no length (len=N)' : `len ${c.line.len}`}, but the kernel's ${c.line.point} reported len=${c.event!.len} = ${lenSum(c.path!.datagram, c.line.point)}`);
  return {
    lines: mine.length,
    noneMessage: evidence(r, port, 'none of your lines is an event of the lab\'s datagram: no length to judge'),
    wrong,
    wrongMessage: evidence(r, port, wrong.join('\n')),
  };
}

/**
 * The control of the race: the raced decoys' events (sent from another CPU) that the kernel recorded at netif_rx,
 * net_dev_xmit or netif_receive_skb inside a lab's datagram's path, i.e. after its net_dev_queue and before its
 * netif_receive_skb: there a tracer that follows "a datagram in flight" instead of an skb prints or misses something.
 */
export function concurrency(r: Run) {
  const inside = r.interleaved.filter((x) => x.other.datagram.concurrent && x.event.point !== 'net_dev_queue');
  const decoys = r.paths.filter((p) => p.datagram.concurrent);
  const per = r.targets.map((t) => `${t.datagram.label}: ${kernelPath(t).trim().replace(/\n\s*/g, ' | ')}\n    in between: ${r.interleaved.filter((x) => x.path === t).map((x) => `#${x.event.index} ${describeEvent(x.event)}`).slice(0, 6).join(' | ') || '(nothing)'}`);
  return {
    inside: inside.length,
    decoys: decoys.length,
    labs: new Set(inside.map((x) => x.path)).size,
    message: `${decoys.length} decoys of ${r.raceDecoy.payload}${r.raceDecoy.spread ? `–${r.raceDecoy.payload + r.raceDecoy.spread - 1}` : ''} bytes to ${r.raceDecoy.label.replace(/^decoy to /, '')}; the kernel recorded ${inside.length} of their netif_rx/net_dev_xmit/netif_receive_skb events inside a lab's datagram's path (event numbers in the record):\n${per.join('\n')}`,
  };
}

/**
 * The control of the token bucket: the most of the lab's datagrams sent through it that were on their way at once in
 * the kernel's record — one, and those queued after it before its net_dev_xmit.
 */
export function together(r: Run) {
  const t = r.together;
  const inFlight = t.map((a) => 1 + t.filter((b) => b !== a && a.events.net_dev_queue && a.events.net_dev_xmit && b.events.net_dev_queue
    && b.events.net_dev_queue.index > a.events.net_dev_queue.index && b.events.net_dev_queue.index < a.events.net_dev_xmit.index).length);
  return {
    most: Math.max(0, ...inFlight),
    message: r.tbfError
      ? `the experiment could not put a token bucket on the sender's veth: ${r.tbfError}`
      : `the lab's datagrams sent back to back through the token bucket, as the kernel recorded them:\n${t.map((p) => `${p.datagram.label}:\n${kernelPath(p)}`).join('\n')}\n`
        + 'expected the next ones\' net_dev_queue before the second one\'s net_dev_xmit (they wait in the bucket\'s queue): three on their way at once',
  };
}

/** The control of the receive on another CPU: the CPUs of the last lab's datagram's events in the kernel's record. */
export function otherCpuReceive(r: Run) {
  const t = r.rpsTarget;
  const q = t?.events.net_dev_queue;
  const rx = t?.events.netif_receive_skb;
  return {
    queued: q?.cpu,
    received: rx?.cpu,
    message: t
      ? `${t.datagram.label}: the kernel recorded ${describeEvent(q)} on CPU ${q?.cpu ?? '?'} and ${describeEvent(rx)} on CPU ${rx?.cpu ?? '?'}; RPS (rps_cpus of the peer's receive queue) should have moved the receive to another CPU`
      : 'the experiment sent no lab\'s datagram for the peer to receive on another CPU',
  };
}

/** One reuse in the kernel's record, for messages: the lab's datagram's last event, then the decoy's first at the same address. */
function reuseLine(x: Run['reuse'][number]): string {
  return `${x.lab.datagram.label}: #${x.lab.events.net_dev_queue!.index} ${describeEvent(x.lab.events.net_dev_queue)} … #${x.lab.events.netif_receive_skb!.index} ${describeEvent(x.lab.events.netif_receive_skb)}; then ${x.decoy.datagram.label} (${x.decoy.datagram.payload} bytes): #${firstEvent(x.decoy)!.index} ${describeEvent(firstEvent(x.decoy))}`;
}

/**
 * The control of the dead address: did a decoy's skb get the address of a lab's datagram after that datagram's
 * netif_receive_skb (the kernel's record)? Without one, a tracer that never forgets an skb is not put to the test.
 */
export function deadAddress(r: Run) {
  const labs = r.targets.map((t) => `  ${t.datagram.label}: ${describeEvent(t.events.net_dev_queue)} … ${describeEvent(t.events.netif_receive_skb)}`);
  const after = r.paths.filter((p) => !p.datagram.lab && !p.datagram.concurrent && p.datagram.from === r.target.datagram.from).slice(-12)
    .map((p) => `  ${p.datagram.label} (${p.datagram.payload} bytes): #${p.events.net_dev_queue?.index} ${describeEvent(p.events.net_dev_queue)}`);
  const same = r.reuse.filter(sameLength);
  return {
    reused: r.reuse.length,
    sameLength: same.length,
    message: r.reuse.length
      ? `the kernel gave ${r.reuse.length} decoys the address of a lab's datagram it was done with, ${same.length} of them as long as that datagram:\n${r.reuse.map(reuseLine).join('\n')}`
      : `the experiment could not set up the condition: in ${r.reuseAttempts} of ${r.reuseTries} attempts (a lab's datagram to an address the peer drops, then decoys as long as it at once from the same CPU 0 and socket, and a tail of decoys) no decoy's skb got the address of a lab's datagram after that datagram's netif_receive_skb, so a tracer that never forgets a followed skb would go unnoticed. Nothing to fix in your tracer: something else on CPU 0 took the freed skbs first; run the lab again.\nthe lab's datagrams in the kernel's record:\n${labs.join('\n')}\nthe last decoys sent from ${r.target.datagram.from}:\n${after.join('\n')}`,
  };
}

/**
 * The control of the address no net_dev_queue took back: did a frame sent past the qdisc get the address of a lab's
 * datagram after that datagram's netif_receive_skb, with no skb queued at that address in between (the kernel's
 * record)? Without one, a tracer that re-decides at every net_dev_queue and never forgets is not put to the test.
 */
export function unqueuedAddress(r: Run) {
  const frames = r.paths.filter((p) => p.datagram.bypass);
  return {
    reused: r.unqueued.length,
    message: r.unqueued.length
      ? `the kernel gave ${r.unqueued.length} frames sent past the qdisc the address of a lab's datagram it was done with:\n${r.unqueued.map(reuseLine).join('\n')}`
      : `the experiment could not set up the condition: in ${r.bypassAttempts} of ${r.bypassTries} attempts (a lab's datagram to an address the peer drops, then frames through a packet socket with PACKET_QDISC_BYPASS at once from the same CPU 0 and process) no frame's skb got the address of a lab's datagram after that datagram's netif_receive_skb without another skb queued there in between, so a tracer that decides at every net_dev_queue and never forgets would go unnoticed. Nothing to fix in your tracer: something else on CPU 0 took the freed skbs first; run the lab again.\nthe frames in the kernel's record (${frames.length} sent):\n${frames.slice(-12).map((p) => `  ${p.datagram.payload} + 28 bytes: #${p.events.netif_rx?.index} ${describeEvent(p.events.netif_rx)}`).join('\n')}`,
  };
}

/**
 * How many records before a lab's datagram's net_dev_queue (or after its netif_receive_skb) a raced decoy's event
 * still counts as "at the same time": a tracer's probe on a tracepoint runs before or after the tracefs event's
 * (callbacks run in the order they were attached), so an event another CPU recorded a few records before the lab's
 * net_dev_queue may have come after it for the tracer (seen in CI: a flag-following tracer printed a decoy's netif_rx
 * recorded just before the lab's net_dev_queue).
 */
export const RACE_SLACK = 8;

/** Where an event of another datagram lies inside (or, for a raced decoy, right next to) a lab's datagram's path (for messages), if it does. */
function insideOf(r: Run, e: NetEvent | undefined): string {
  const x = e && r.interleaved.find((i) => i.event === e);
  if (x) return ` — recorded between ${x.path.datagram.label}'s net_dev_queue and its netif_receive_skb (skbaddr=0x${x.path.events.net_dev_queue!.skb}): an skb of its own, on its way at the same time`;
  const o = e && r.paths.find((p) => p.datagram.concurrent && NET_POINTS.some((pt) => p.events[pt] === e));
  const t = o && r.targets.find((p) => p.events.net_dev_queue && p.events.netif_receive_skb
    && e!.index > p.events.net_dev_queue.index - RACE_SLACK && e!.index < p.events.netif_receive_skb.index + RACE_SLACK);
  return t ? ` — recorded next to ${t.datagram.label}'s net_dev_queue (#${t.events.net_dev_queue!.index}) … netif_receive_skb (#${t.events.netif_receive_skb!.index}) (skbaddr=0x${t.events.net_dev_queue!.skb}), within ${RACE_SLACK} records: an skb of its own, on its way at the same time` : '';
}

/** The tracer's event lines that are not the lab's datagram. */
export function strays(r: Run, port: number) {
  const lines = r.lines.filter((c) => !c.path || !r.targets.includes(c.path));
  const describe = (c: Classified) => `line ${c.line.index + 1} "${c.line.line}": ${c.path ? `${c.path.datagram.label} (${c.path.datagram.payload} bytes), the kernel's ${describeEvent(c.event)}${firstEvent(c.path) && r.targets.some((t) => t.events.net_dev_queue!.skb === firstEvent(c.path!)!.skb && t.events.net_dev_queue!.index < firstEvent(c.path!)!.index) ? ' — an address a lab\'s datagram had before: the slab reused it' : insideOf(r, c.event)}` : c.line.skb ? 'not an event of the lab\'s datagrams on the lab\'s devices' : 'no skb address'}`;
  // Lines that are no event line (they name no tracepoint, or several) but name an skb address only the other datagrams had.
  const parsed = new Set(r.lines.map((c) => c.line.index));
  const addrs = (ps: readonly DatagramPath[]) => new Set(ps.flatMap((p) => NET_POINTS.flatMap((pt) => p.events[pt]?.skb ?? [])));
  const [mine, others] = [addrs(r.targets), addrs(r.paths.filter((p) => !r.targets.includes(p)))];
  const about = r.output.flatMap((l, i) => {
    const a = parsed.has(i) ? [] : addressesIn(l);
    return a.length && a.every((x) => !mine.has(x)) && a.some((x) => others.has(x)) ? [`line ${i + 1} "${l}": names the skb of another datagram (${a.join(', ')}), not an event line of the lab's`] : [];
  });
  const stray = [...lines.map(describe), ...about];
  // One line per datagram in the message (the first of its lines, preferring one inside a lab's datagram's path; one for all the raced decoys, one for all the lines of none).
  const byPath = new Map<DatagramPath | Classified | string, Classified>();
  for (const c of lines) {
    // The raced decoys (many skbs, one label) count as one, and so do the lines of no datagram on the lab's devices.
    const k = c.path?.datagram.concurrent ? c.path.datagram.label : c.path ?? 'none';
    const had = byPath.get(k);
    if (!had || (!insideOf(r, had.event) && insideOf(r, c.event))) byPath.set(k, c);
  }
  const shown = [...byPath.values()].sort((a, b) => a.line.index - b.line.index).map(describe);
  const raced = lines.some((c) => insideOf(r, c.event));
  const dead = r.reuse.filter((x) => lines.some((c) => c.path === x.decoy));
  const unqueued = r.unqueued.filter((x) => lines.some((c) => c.path === x.decoy));
  return {
    lines: targetLines(r).length,
    noneMessage: evidence(r, port, 'none of your lines is an event of the lab\'s datagrams'),
    stray,
    strayMessage: evidence(r, port, `${stray.length} of your lines are not the lab's datagrams (UDP, IPv4 protocol 17, to port ${port}); the first line of each other datagram (one for all the raced decoys, one for all lines of no datagram on the lab's veths):\n${[...shown.slice(0, 15), ...about.slice(0, 5)].join('\n')}`
      + (raced ? '\nan skb sent at the same time from another CPU passed the tracepoints while the lab\'s datagram was on its way: "a datagram is in flight" is no way to follow one; recognise the later events by the skb address you recorded at net_dev_queue (a map keyed by args->skbaddr, deleted at netif_receive_skb)' : '')
      + (dead.length ? `\nyou followed a decoy whose skb got the address of a lab's datagram after that datagram's last event (the kernel's record: ${dead.slice(0, 3).map(reuseLine).join(' | ')}): the slab hands a freed skb's address to the next skb, so forget a followed address at its last event (delete its map entry at netif_receive_skb)` : '')
      + (unqueued.length ? `\nyou followed a frame that passed no net_dev_queue (sent past the qdisc) at the address of a lab's datagram the kernel was done with (the kernel's record: ${unqueued.slice(0, 3).map(reuseLine).join(' | ')}): not every skb passes net_dev_queue, where you decide what to follow, so forget a followed address at its last event` : '')),
  };
}
