/**
 * /proc/buddyinfo and /proc/zoneinfo, the two views of the buddy allocator's
 * free lists this lab reads (mm/vmstat.c: frag_show, zoneinfo_show).
 */

/** Free blocks per order (index = order, 0 … MAX_ORDER-1), per zone name ("DMA", "DMA32", "Normal"). */
export type Buddy = Map<string, number[]>;

/** `Node 0, zone   Normal  14292  16013 … 511` lines; node 0 only (this host and the guest have one node). */
export function parseBuddyinfo(text: string): Buddy {
  const out: Buddy = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^Node\s+(\d+),\s+zone\s+(\S+)((?:\s+\d+)+)\s*$/);
    if (m && m[1] === '0') out.set(m[2]!, m[3]!.trim().split(/\s+/).map(Number));
  }
  return out;
}

/** One zone's page frames: [start, start + spanned). */
export interface ZoneSpan { readonly name: string; readonly start: number; readonly spanned: number; readonly present: number }

/** The zones of node 0 with the frames they span (zones with no page left out). */
export function parseZoneinfo(text: string): ZoneSpan[] {
  const out: ZoneSpan[] = [];
  let cur: { name: string; start?: number; spanned?: number; present?: number } | undefined;
  const push = () => { if (cur && cur.start !== undefined && cur.spanned) out.push({ name: cur.name, start: cur.start, spanned: cur.spanned, present: cur.present ?? 0 }); };
  for (const line of text.split('\n')) {
    const z = line.match(/^Node\s+(\d+),\s+zone\s+(\S+)/);
    if (z) { push(); cur = z[1] === '0' ? { name: z[2]! } : undefined; continue; }
    if (!cur) continue;
    const kv = line.match(/^\s+(start_pfn:|spanned|present)\s+(\d+)/);
    if (kv) {
      if (kv[1] === 'start_pfn:') cur.start = Number(kv[2]);
      else if (kv[1] === 'spanned') cur.spanned = Number(kv[2]);
      else cur.present = Number(kv[2]);
    }
  }
  push();
  return out;
}

/** The zone a page frame belongs to, or undefined. */
export function zoneOf(zones: readonly ZoneSpan[], pfn: number): string | undefined {
  return zones.find((z) => pfn >= z.start && pfn < z.start + z.spanned)?.name;
}

/** Free pages held in blocks of orders lo…hi: Σ count[k]·2^k. */
export function pagesIn(counts: readonly number[] | undefined, lo: number, hi = 10): number {
  if (!counts) return 0;
  let s = 0;
  for (let k = lo; k <= hi && k < counts.length; k++) s += (counts[k] ?? 0) * 2 ** k;
  return s;
}

/** after − before, per order, for one zone. */
export function orderDelta(before: readonly number[] | undefined, after: readonly number[] | undefined): number[] {
  const n = Math.max(before?.length ?? 0, after?.length ?? 0);
  return Array.from({ length: n }, (_, k) => (after?.[k] ?? 0) - (before?.[k] ?? 0));
}
