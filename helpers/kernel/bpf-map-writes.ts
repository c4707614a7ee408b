/**
 * Which instructions of a loaded BPF program write into one map's values, and how (pure).
 *
 * Input: `bpftool prog dump xlated id <id>` — the kernel's own copy of the program after the verifier
 * (array lookups inlined: `r1 = map[id:N]`, `r1 += 312`, …, `r0 += r1`). A forward data-flow pass over its
 * control-flow graph follows, per register and per 8-byte stack slot, which maps' memory it may point into:
 * a pointer is born from `rX = map[id:N]` (a map's address, a global's value) or from a helper lookup on
 * such a map, and travels through moves, additions, spills and fills, and bpf-to-bpf calls (arguments in,
 * r0 out). A callback a helper runs (`rX = subprog[+N]` handed to bpf_for_each_map_elem, bpf_loop, a timer…) is
 * entered with what the helper's arguments may point into (bpf_for_each_map_elem's callback gets a pointer into
 * the map's value). A pointer stored through anything but the frame pointer (a slot of the caller's stack whose
 * address a subprogram or callback got) is not followed slot by slot: every 8-byte load through such a pointer may
 * return any pointer the program ever stored. Every store then says whose memory it writes: a plain store
 * (`*(u64 *)(r0 +0) = r1`, a read-modify-write that loses concurrent updates), an atomic add (`lock *(u64 *)(r0 +0) += r1`,
 * `atomic64_fetch_add`, a compare-and-exchange), or a helper given a pointer into the map
 * (`bpf_map_update_elem` on it, or any helper that fills a buffer there).
 *
 * A plain store made while a `bpf_spin_lock` is held on the same map value (`call bpf_spin_lock#…` with a
 * pointer into that value, no `bpf_spin_unlock` since, on every path to the store) is `locked`: the lock
 * serializes every CPU's read-modify-write. "The same value" is the same pointer's origin: each pointer
 * carries the instruction that made it (the lookup call, the inlined lookup's add, the map's ld_imm64), kept
 * by moves, constant or scalar offsets and spills to this frame's stack, and lost at any merge of two origins,
 * so a lock taken on one element (or another map) does not cover a store into another. The verifier allows no
 * call, so no new lookup, while a lock is held, and no exit with one held.
 *
 * Over-approximates (a pointer that may point into the map on some path counts as pointing into it; a store
 * is `locked` only if the lock is held on every path to it), so a program judged free of plain stores has
 * none on any path.
 */

export interface MapWrite {
  /** The instruction's index in the dump. */
  readonly at: number;
  /** The dump's line, e.g. "72: (db) lock *(u64 *)(r0 +0) += r1". */
  readonly line: string;
  readonly kind: 'atomic-add' | 'locked' | 'plain' | 'helper';
}

interface Insn { readonly at: number; readonly op: number; readonly text: string; readonly line: string }

/** The instructions of an xlated dump (source and label lines dropped). */
export function parseXlated(dump: string): Insn[] {
  const out: Insn[] = [];
  for (const raw of dump.split('\n')) {
    const m = raw.match(/^\s*(\d+):\s+\(([0-9a-f]{2})\)\s+(.*)$/);
    if (m) out.push({ at: Number(m[1]), op: parseInt(m[2]!, 16), text: m[3]!.trim(), line: raw.trim() });
  }
  return out;
}

/** What a value may point into: map ids (≥ 0), and -(entry + 1) for the address of a subprogram (a callback). */
type Tags = ReadonlySet<number>;
const NONE: Tags = new Set();

/**
 * Per register and stack slot, what it may point into and (ids, slotIds) the one instruction that made the pointer
 * (null: unknown, or several); `lock`: the origin of the pointer whose bpf_spin_lock is held on every path here.
 */
interface State {
  readonly regs: readonly Tags[];
  readonly slots: ReadonlyMap<number, Tags>;
  readonly ids: readonly (number | null)[];
  readonly slotIds: ReadonlyMap<number, number>;
  /** undefined: a lock taken on a register not (yet) known to point anywhere (a state the flow has not settled). */
  readonly lock: number | null | undefined;
}

const union = (a: Tags, b: Tags): Tags => (b.size === 0 ? a : a.size === 0 ? b : new Set([...a, ...b]));
const subset = (a: Tags, b: Tags) => [...a].every((x) => b.has(x));

function joinState(a: State | undefined, b: State): { state: State; changed: boolean } {
  if (!a) return { state: b, changed: true };
  let changed = false;
  const regs = a.regs.map((t, i) => { const u = union(t, b.regs[i]!); if (!subset(u, t)) changed = true; return u; });
  const slots = new Map(a.slots);
  for (const [k, v] of b.slots) {
    const old = slots.get(k) ?? NONE;
    const u = union(old, v);
    if (!subset(u, old)) changed = true;
    slots.set(k, u);
  }
  // Origins and the held lock: kept where both paths agree; a path where the value is no pointer (the NULL of a
  // failed lookup) leaves the other's origin. Once a pointer, an origin only ever becomes null, so this ends.
  const pick = (ta: Tags, ia: number | null | undefined, tb: Tags, ib: number | null | undefined) =>
    (tb.size === 0 ? ia ?? null : ta.size === 0 ? ib ?? null : ia === ib ? ia ?? null : null);
  const ids = a.ids.map((id, i) => { const u = pick(a.regs[i]!, id, b.regs[i]!, b.ids[i]); if (u !== id) changed = true; return u; });
  const slotIds = new Map<number, number>();
  for (const k of new Set([...a.slotIds.keys(), ...b.slotIds.keys()])) {
    const u = pick(a.slots.get(k) ?? NONE, a.slotIds.get(k), b.slots.get(k) ?? NONE, b.slotIds.get(k));
    if (u !== null) slotIds.set(k, u);
    if (u !== (a.slotIds.get(k) ?? null)) changed = true;
  }
  const lock = a.lock === undefined ? b.lock : b.lock === undefined ? a.lock : a.lock === b.lock ? a.lock : null;
  if (lock !== a.lock) changed = true;
  return { state: { regs, slots, ids, slotIds, lock }, changed };
}

const MEM = /\((?:u8|u16|u32|u64)\s*\*\)\s*\(r(\d+)\s*([+-]\s*\d+)?\)/;

/**
 * Every instruction that may write into the values of map `mapId`, as the data flow of the whole program
 * (every subprogram) shows it.
 */
export function writesToMap(dump: string, mapId: number): MapWrite[] {
  const insns = parseXlated(dump);
  const pos = new Map(insns.map((x, i) => [x.at, i]));
  const entries = new Set<number>([insns[0]?.at ?? 0]);
  for (const x of insns) {
    const c = x.text.match(/^call pc([+-]\d+)/) ?? x.text.match(/^r\d+ = subprog\[([+-]\d+)\]/);
    if (c) entries.add(x.at + 1 + Number(c[1]));
  }
  const sortedEntries = [...entries].sort((a, b) => a - b);
  const subprogOf = (at: number) => sortedEntries.filter((e) => e <= at).pop() ?? 0;
  const returns = new Map<number, Tags>();
  /** Every pointer the program stores with an 8-byte store (any base), and those stored other than through r10. */
  let stored: Tags = NONE;
  let storedAside: Tags = NONE;
  const maps = (t: Tags): Tags => new Set([...t].filter((x) => x >= 0));
  const writes = new Map<string, MapWrite & { maps: Tags }>();
  /** Plain stores into a map's value: whether a lock on the same value was held (the last visit is the fixed point's). */
  let guarded = new Map<number, boolean>();

  const record = (x: Insn, kind: MapWrite['kind'], maps: Tags) => {
    if (!maps.size) return;
    const key = `${x.at}:${kind}`;
    const old = writes.get(key);
    writes.set(key, { at: x.at, line: x.line, kind, maps: old ? union(old.maps, maps) : maps });
  };

  for (let round = 0; round < 20; round++) {
    const before = JSON.stringify([[...returns].map(([k, v]) => [k, [...v].sort()]), [...stored].sort(), [...storedAside].sort()]);
    const states = new Map<number, State>();
    const work: number[] = [];
    guarded = new Map();
    const flow = (at: number, s: State) => {
      const i = pos.get(at);
      if (i === undefined) return;
      const { state, changed } = joinState(states.get(i), s);
      if (changed) { states.set(i, state); work.push(i); }
    };
    const emptyRegs = () => Array.from({ length: 11 }, () => NONE);
    const noIds = () => Array.from({ length: 11 }, (): number | null => null);
    const fresh = (regs: Tags[]): State => ({ regs, slots: new Map(), ids: noIds(), slotIds: new Map(), lock: null });
    for (const e of sortedEntries) flow(e, fresh(emptyRegs()));
    while (work.length) {
      const i = work.pop()!;
      const x = insns[i]!;
      const s = states.get(i)!;
      const regs = [...s.regs];
      const slots = new Map(s.slots);
      const ids = [...s.ids];
      const slotIds = new Map(s.slotIds);
      let lock = s.lock;
      /** A new pointer made here: its origin is this instruction (a lock still held on an older one of the same origin no longer matches). */
      const born = (r: number) => { ids[r] = x.at; if (lock === x.at) lock = null; };
      const plainStore = (maps: Tags) => {
        if (!maps.size) return;
        record(x, 'plain', maps);
        guarded.set(x.at, lock !== null && lock !== undefined && ids[base] === lock);
      };
      const next = insns[i + 1]?.at ?? x.at + 1;
      const cls = x.op & 0x07;
      const t = x.text;
      const reg = (name: string | undefined) => (name && /^r\d+$/.test(name) ? regs[Number(name.slice(1))] ?? NONE : NONE);
      const mem = t.match(MEM);
      const base = mem ? Number(mem[1]) : -1;
      const off = mem?.[2] ? Number(mem[2].replace(/\s+/g, '')) : 0;
      let successors: number[] = [next];

      if (cls === 0x00 && x.op === 0x18) {
        // ld_imm64: a map's address or a global's value makes a pointer into that map.
        const m = t.match(/^r(\d+) = map\[id:(\d+)\]/);
        const f = t.match(/^r(\d+) = subprog\[([+-]\d+)\]/);
        const d = t.match(/^r(\d+) =/);
        if (d) regs[Number(d[1])] = m ? new Set([Number(m[2])]) : f ? new Set([-(x.at + 1 + Number(f[2]) + 1)]) : NONE;
        if (d) { if (m) born(Number(d[1])); else ids[Number(d[1])] = null; }
        successors = [insns[i + 1]?.at ?? x.at + 2];
      } else if (cls === 0x04 || cls === 0x07) {
        const m = t.match(/^([rw])(\d+) (\S+) (.*)$/);
        if (m) {
          const dst = Number(m[2]);
          const wide = m[1] === 'r' && cls === 0x07;
          const src = m[4]!.trim();
          const srcReg = /^r\d+$/.test(src) ? Number(src.slice(1)) : -1;
          if (!wide) { regs[dst] = NONE; ids[dst] = null; }
          else if (m[3] === '=') { regs[dst] = srcReg >= 0 ? reg(src) : NONE; ids[dst] = srcReg >= 0 ? ids[srcReg]! : null; }
          else if (m[3] === '+=' || m[3] === '-=') {
            // A pointer plus a constant or a scalar stays in its value; a scalar plus a pointer is a new pointer.
            const dstPtr = regs[dst]!.size > 0;
            const srcPtr = srcReg >= 0 && reg(src).size > 0;
            regs[dst] = union(regs[dst]!, reg(src));
            if (srcPtr && !dstPtr) born(dst);
            else if (srcPtr) ids[dst] = null;
          } else ids[dst] = null;
          // Other ALU on a pointer (the verifier allows few): keep what it may point into.
        }
      } else if (cls === 0x01) {
        const d = t.match(/^r(\d+) =/);
        const wide = /\(u64 \*\)/.test(t);
        // A fill from this frame's slot; through any other pointer (a caller's slot, a callback's context), any
        // pointer the program ever stored.
        if (d) regs[Number(d[1])] = !wide ? NONE : base === 10 ? union(slots.get(off) ?? NONE, storedAside) : stored;
        if (d) ids[Number(d[1])] = wide && base === 10 ? slotIds.get(off) ?? null : null;
      } else if (cls === 0x02) {
        if (base === 10) { slots.delete(off); slotIds.delete(off); }
        else if (base >= 0) plainStore(regs[base] ?? NONE);
      } else if (cls === 0x03) {
        const mode = x.op & 0xe0;
        if (mode === 0xc0) {
          // Atomics: an add (lock … +=, fetch_add) or a compare-and-exchange loop counts atomically;
          // store_release is a plain store; and/or/xor/xchg are no increments (ignored here).
          const target = regs[base] ?? NONE;
          if (/store_release/.test(t)) record(x, 'plain', target);
          else if (/\+=|fetch_add|cmpxchg/.test(t)) record(x, 'atomic-add', target);
          const d = t.match(/^r(\d+) =/);
          if (d) { regs[Number(d[1])] = NONE; ids[Number(d[1])] = null; }
          else if (/cmpxchg/.test(t)) { regs[0] = NONE; ids[0] = null; }
        } else {
          const src = t.match(/=\s*(r\d+)\s*$/)?.[1];
          const wide = /\(u64 \*\)/.test(t) && !!src;
          if (wide) stored = union(stored, reg(src));
          const srcId = src ? ids[Number(src.slice(1))] ?? null : null;
          if (base === 10) {
            if (wide) slots.set(off, reg(src)); else slots.delete(off);
            if (wide && srcId !== null) slotIds.set(off, srcId); else slotIds.delete(off);
          } else if (base >= 0) {
            if (wide) storedAside = union(storedAside, reg(src));
            plainStore(maps(regs[base] ?? NONE));
          }
        }
      } else if (cls === 0x05 || cls === 0x06) {
        const code = x.op & 0xf0;
        const jump = t.match(/goto(?:l)? pc([+-]\d+)/);
        if (code === 0x90) {
          // exit: what this subprogram returns.
          const sub = subprogOf(x.at);
          returns.set(sub, union(returns.get(sub) ?? NONE, regs[0]!));
          successors = [];
        } else if (code === 0x80) {
          const local = t.match(/^call pc([+-]\d+)/);
          if (local) {
            const callee = x.at + 1 + Number(local[1]);
            flow(callee, fresh(regs.map((r, k) => (k >= 1 && k <= 5 ? r : NONE))));
            regs[0] = returns.get(callee) ?? NONE;
            ids[0] = null;
          } else {
            const name = t.replace(/^call\s+/, '').replace(/#.*$/, '');
            const args = [1, 2, 3, 4, 5].map((k) => regs[k]!);
            // A callback the helper runs: entered with whatever its arguments may point into (for
            // bpf_for_each_map_elem, the map's value among them).
            const all = args.reduce(union, NONE);
            const reach = maps(all);
            for (const cb of [...all].filter((v) => v < 0)) {
              flow(-cb - 1, fresh([NONE, reach, reach, reach, reach, reach, NONE, NONE, NONE, NONE, NONE]));
            }
            // bpf_spin_lock on a pointer into a map's value: held until bpf_spin_unlock (the verifier pairs them).
            if (name === 'bpf_spin_lock') lock = regs[1]!.size > 0 ? ids[1]! : undefined;
            else if (name === 'bpf_spin_unlock') lock = null;
            ids[0] = null;
            if (/lookup/.test(name)) { regs[0] = args[0]!; born(0); }
            else {
              // (A helper that runs a callback writes nothing itself: the callback's own stores are followed.)
              if (![...all].some((v) => v < 0)) {
                if (/update_elem|delete_elem/.test(name)) record(x, 'helper', args[0]!);
                // Any other helper handed a pointer into a map's value may fill it (bpf_probe_read_kernel, …).
                if (!/update_elem|delete_elem|spin_lock|spin_unlock/.test(name)) record(x, 'helper', all);
              }
              regs[0] = NONE;
            }
          }
          for (const k of [1, 2, 3, 4, 5]) { regs[k] = NONE; ids[k] = null; }
        } else if (jump) {
          const target = x.at + 1 + Number(jump[1]);
          successors = code === 0x00 ? [target] : [next, target];
        }
      }
      for (const n of successors) flow(n, { regs, slots, ids, slotIds, lock });
    }
    const after = JSON.stringify([[...returns].map(([k, v]) => [k, [...v].sort()]), [...stored].sort(), [...storedAside].sort()]);
    if (after === before) break;
  }
  return [...writes.values()].filter((w) => w.maps.has(mapId)).sort((a, b) => a.at - b.at)
    .map(({ at, line, kind }) => ({ at, line, kind: kind === 'plain' && guarded.get(at) ? 'locked' as const : kind }));
}

/** A counter's writes, sorted: the safe ones (atomic adds, stores under a spin lock on the value), and the others with why each is not one (for assertion messages). */
export interface CounterWrites {
  readonly atomic: readonly string[];
  readonly racy: readonly string[];
  /** "atomic adds: …; other writes: …", one line each. */
  readonly described: string;
}

/**
 * How a program updates the counters in map `mapId` (a shared array or hash: every CPU may update it at
 * once, so each write must be an atomic add, or a store made while bpf_spin_lock is held on that value;
 * a per-CPU map needs neither).
 */
export function counterWrites(dump: string, mapId: number): CounterWrites {
  const writes = writesToMap(dump, mapId);
  const atomic = writes.filter((w) => w.kind === 'atomic-add' || w.kind === 'locked')
    .map((w) => `${w.line}${w.kind === 'locked' ? '  (under bpf_spin_lock on the same value)' : ''}`);
  const racy = writes.filter((w) => w.kind === 'plain' || w.kind === 'helper')
    .map((w) => `${w.line}${w.kind === 'helper' ? '  (a helper writes the value: a copy, not an add)' : '  (a plain store)'}`);
  return {
    atomic, racy,
    described: `  atomic adds and stores under bpf_spin_lock: ${atomic.length ? atomic.join('; ') : 'none'}\n  other writes: ${racy.length ? racy.join('; ') : 'none'}`,
  };
}
