/**
 * The tracing ring buffer's binary pages, as a tracefs instance's per_cpu/cpu<N>/trace_pipe_raw gives them (and as
 * trace-cmd reads them): every field of an event, including those its print format leaves out (an address, a flag).
 * Pure parsers; tracefs.ts reads the pages (TraceInstance.takeRaw). Little-endian machines (x86-64, arm64).
 *
 * The layout is the kernel's (kernel/trace/ring_buffer.c), described by two format files:
 * - events/header_page: the page header's fields (`timestamp`, `commit` = the bytes of data, with the missed-events
 *   flags in bits 30 and 31, then `data`);
 * - events/<group>/<event>/format: the event's ID and each field's offset, size and sign.
 */

/** One field of a tracefs format file (an event's `format`, or `events/header_page`). */
export interface FormatField { readonly offset: number; readonly size: number; readonly signed: boolean }

/** A tracefs format file: its fields by name (`const void * skaddr` is skaddr, `__u8 saddr[4]` saddr) and, for an event, its ID. */
export interface TraceFormat { readonly id?: number; readonly fields: ReadonlyMap<string, FormatField> }

export function parseTraceFormat(text: string): TraceFormat {
  const fields = new Map<string, FormatField>();
  for (const m of text.matchAll(/field:\s*([^;]*?)\s*;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g)) {
    const name = m[1]!.replace(/\[.*$/, '').trim().split(/[\s*]+/).at(-1)!;
    if (!fields.has(name)) fields.set(name, { offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' });
  }
  const id = text.match(/^ID:\s*(\d+)/m)?.[1];
  return { id: id === undefined ? undefined : Number(id), fields };
}

/** An integer field of a record (1, 2, 4 or 8 bytes), or undefined when the record is too short or the size is another. */
export function fieldValue(rec: Buffer, f: FormatField): bigint | undefined {
  if (f.offset + f.size > rec.length) return undefined;
  switch (f.size) {
    case 1: return BigInt(f.signed ? rec.readInt8(f.offset) : rec.readUInt8(f.offset));
    case 2: return BigInt(f.signed ? rec.readInt16LE(f.offset) : rec.readUInt16LE(f.offset));
    case 4: return BigInt(f.signed ? rec.readInt32LE(f.offset) : rec.readUInt32LE(f.offset));
    case 8: return f.signed ? rec.readBigInt64LE(f.offset) : rec.readBigUInt64LE(f.offset);
    default: return undefined;
  }
}

/** The integer fields `names` of one record of `event`, by name; undefined for another event's record or one that lacks any of them. */
export function recordFields<N extends string>(rec: Buffer, event: TraceFormat, names: readonly N[]): Record<N, bigint> | undefined {
  const get = (name: string) => { const f = event.fields.get(name); return f ? fieldValue(rec, f) : undefined; };
  if (event.id !== undefined && get('common_type') !== BigInt(event.id)) return undefined;
  const out = {} as Record<N, bigint>;
  for (const n of names) {
    const v = get(n);
    if (v === undefined) return undefined;
    out[n] = v;
  }
  return out;
}

/** The ring buffer's event header (events/header_event): type_len (5 bits), then time_delta (27 bits). */
const RB_PADDING = 29, RB_TIME_EXTEND = 30, RB_TIME_STAMP = 31;

/**
 * The event records of one page: the page header, then events, each a 32-bit header (little-endian: type_len in the
 * low 5 bits, time_delta above) and its data: type_len 1–28 = that many 32-bit words of data, 0 = the length in the
 * next word (itself included), 29 = padding (a discarded event: the length in the next word; time_delta 0: the rest
 * of the page), 30 and 31 = a time extend or absolute time stamp (8 bytes, no data). Each record starts with the
 * event's common fields (common_type first), as its format file says.
 */
export function ringBufferRecords(page: Buffer, header: TraceFormat): Buffer[] {
  const commit = header.fields.get('commit'), data = header.fields.get('data');
  if (!commit || !data) throw new Error('events/header_page has no commit or data field');
  const size = fieldValue(page, { ...commit, signed: false });
  if (size === undefined) return [];
  const end = Math.min(page.length, data.offset + Number(BigInt.asUintN(30, size)));
  const records: Buffer[] = [];
  for (let off = data.offset; off + 4 <= end;) {
    const h = page.readUInt32LE(off);
    const typeLen = h & 0x1f, delta = h >>> 5;
    if (typeLen === RB_PADDING) {
      if (delta === 0 || off + 8 > end) break;
      off += 4 + page.readUInt32LE(off + 4);
    } else if (typeLen === RB_TIME_EXTEND || typeLen === RB_TIME_STAMP) {
      off += 8;
    } else if (typeLen === 0) {
      if (off + 8 > end) break;
      const len = page.readUInt32LE(off + 4);
      if (len < 4) break;
      records.push(page.subarray(off + 8, Math.min(end, off + 4 + len)));
      off += 4 + len;
    } else {
      records.push(page.subarray(off + 4, Math.min(end, off + 4 + typeLen * 4)));
      off += 4 + typeLen * 4;
    }
  }
  return records;
}

/** Every record of `pages` (trace_pipe_raw reads), in order: `headerPage` is events/header_page's text. */
export function pagesRecords(pages: readonly Buffer[], headerPage: string): Buffer[] {
  const header = parseTraceFormat(headerPage);
  return pages.flatMap((p) => ringBufferRecords(p, header));
}
