// walk(pid): the page state of every mapping (or of the parts of them in a
// range), streamed in bounded chunks so that a process of any size is walked
// in constant memory. Empty stretches
// of large mappings are skipped with PAGEMAP_SCAN and reported as one chunk
// without entries, so a sparse 128 TiB space costs what its pages cost.

import { addressToPage, validatePageCount, validatePid } from './errors';
import { native } from './native';
import { KERNEL_HALF, PAGE_SHIFT } from './page';
import { openPagemap, type PagemapHandle } from './pagemap';
import { type Mapping, readMaps, readMapsAsync } from './proc/maps';

export interface WalkChunk {
  mapping: Mapping;
  /** Index of the mapping in maps order. */
  mappingIndex: number;
  /** Address of the chunk's first page. */
  address: bigint;
  pages: number;
  /**
   * The raw entries, or null for a stretch with no present or swapped page
   * (every entry zero). Reused between chunks unless `copy` is set: read it
   * before asking for the next chunk.
   */
  entries: BigUint64Array | null;
}

export interface WalkOptions {
  /** Entries per chunk (default 65536: 512 KiB). */
  chunkPages?: number;
  /** Hand out a fresh array per chunk instead of reusing one. */
  copy?: boolean;
  /** Only mappings for which this returns true. */
  filter?: (mapping: Mapping) => boolean;
  /** Only the pages at or above this page-aligned address (default 0). */
  start?: bigint | number;
  /** Only the pages below this page-aligned address (default: every page). */
  end?: bigint | number;
}

const DEFAULT_CHUNK = 64 * 1024;

interface Plan {
  pid: number;
  chunk: number;
  copy: boolean;
  filter: (m: Mapping) => boolean;
  start: bigint;
  end: bigint;
}

function plan(pid: number, options: WalkOptions): Plan {
  validatePid(pid);
  const chunk = validatePageCount(options.chunkPages ?? DEFAULT_CHUNK, 'chunkPages', 1 << 24);
  if (chunk < 1) throw new RangeError('chunkPages must be at least 1');
  if (options.filter !== undefined && typeof options.filter !== 'function')
    throw new TypeError('filter must be a function');
  const start = BigInt(addressToPage(options.start ?? 0, 'start')) << PAGE_SHIFT;
  const end = options.end === undefined ? KERNEL_HALF : BigInt(addressToPage(options.end, 'end')) << PAGE_SHIFT;
  if (end < start) throw new RangeError('end must not be below start');
  return { pid, chunk, copy: options.copy ?? false, filter: options.filter ?? (() => true), start, end };
}

/** The part of a mapping to walk: [from, to), or null when it lies outside the range or in the kernel's half. */
function span(mapping: Mapping, p: Plan): [bigint, bigint] | null {
  // bigints: no Math.min/Math.max.
  let from = mapping.start;
  if (p.start > from) from = p.start;
  let to = mapping.end;
  if (p.end < to) to = p.end;
  if (KERNEL_HALF < to) to = KERNEL_HALF;
  return from < to && p.filter(mapping) ? [from, to] : null;
}

// Turns one read at `address` into a chunk and says where the next read
// starts (null: the mapping is done). Empty reads are widened with
// PAGEMAP_SCAN to the next populated page, so a sparse mapping yields one
// entry-less chunk per gap instead of one per 512 KiB.
function settle(
  handle: PagemapHandle,
  mapping: Mapping,
  mappingIndex: number,
  address: bigint,
  to: bigint,
  entries: BigUint64Array,
): { chunk: WalkChunk; next: bigint | null } {
  const afterRead = address + (BigInt(entries.length) << PAGE_SHIFT);
  // Only whether any entry is present or swapped matters here: the native
  // check stops at the first one, where counting every state cost a dense
  // chunk a pass over its 64K entries.
  if (native.firstPopulated(entries, 0, entries.length) < entries.length) {
    const chunk = { mapping, mappingIndex, address, pages: entries.length, entries };
    return { chunk, next: afterRead >= to ? null : afterRead };
  }
  const next = afterRead < to ? (handle.nextPopulated(afterRead, to) ?? afterRead) : afterRead;
  const chunk = { mapping, mappingIndex, address, pages: Number((next - address) >> PAGE_SHIFT), entries: null };
  return { chunk, next: next >= to ? null : next };
}

function pagesAt(to: bigint, address: bigint, p: Plan): number {
  return Math.min(p.chunk, Number((to - address) >> PAGE_SHIFT));
}

/** Where a read starts: the mapping, and the address within the part of it to walk. */
interface Position {
  mappingIndex: number;
  address: bigint;
  to: bigint;
}

/** The first part to walk of mapping `from` or a later one; null past the last. */
function firstPosition(parts: ([bigint, bigint] | null)[], from: number): Position | null {
  for (let i = from; i < parts.length; i++) {
    const part = parts[i];
    if (part) return { mappingIndex: i, address: part[0], to: part[1] };
  }
  return null;
}

/** Where the read after the one at `at` starts if that one finds a page (settle() goes straight on). */
function positionAfter(parts: ([bigint, bigint] | null)[], at: Position, p: Plan): Position | null {
  const end = at.address + (BigInt(pagesAt(at.to, at.address, p)) << PAGE_SHIFT);
  return end < at.to
    ? { mappingIndex: at.mappingIndex, address: end, to: at.to }
    : firstPosition(parts, at.mappingIndex + 1);
}

function samePosition(a: Position | null, b: Position | null): boolean {
  return a === null || b === null ? a === b : a.mappingIndex === b.mappingIndex && a.address === b.address;
}

/**
 * Reads queued ahead of the chunk the caller holds. A handle runs its reads
 * one after another on one pool thread; with reads queued, the next is
 * waiting when one ends and that thread reads on while JavaScript takes the
 * entries of the last (with one read at a time it idled about 110 us a
 * chunk for the round trip). At most two full-size reads are queued, and as
 * many smaller ones (small mappings) as fit under MAX_READS_AHEAD, whose
 * reads take microseconds: one at a time, the round trip would dominate.
 */
const LARGE_READS_AHEAD = 2;
const MAX_READS_AHEAD = 32;

interface Read {
  at: Position;
  /** At least an eighth of a chunk: counted against LARGE_READS_AHEAD. */
  large: boolean;
  /** Index of the reused buffer it fills, or -1 for an array of its own. */
  slot: number;
  entries: Promise<BigUint64Array>;
}

/**
 * Streams the page states of every mapping of `pid`, reading on the thread
 * pool ahead of the caller, into buffers it reuses in turn.
 */
export async function* walk(pid: number, options: WalkOptions = {}): AsyncGenerator<WalkChunk> {
  const p = plan(pid, options);
  const handle = openPagemap(pid);
  const ahead: Read[] = [];
  try {
    const maps = await readMapsAsync(pid);
    const parts = maps.map((m) => span(m, p));
    // Full-size buffers: one for the chunk the caller holds, one per large
    // read ahead. A smaller read gets an array of its own: cheap at that
    // size, and it spares a buffer.
    // They are the addon's memory, which the pool thread reads into
    // directly: no copy of each chunk on the JS thread.
    const buffers = p.copy
      ? []
      : Array.from({ length: LARGE_READS_AHEAD + 1 }, () => native.entryBuffer(p.chunk) ?? new BigUint64Array(p.chunk));
    const freeSlots = buffers.map((_, i) => i);
    let largeAhead = 0;
    // Whether the last chunk's last page was populated. When it was not,
    // the pages after it are likely empty too (a sparse mapping), and an
    // empty chunk sends the walk elsewhere with PAGEMAP_SCAN: reads queued
    // past it would be of the wrong pages. Then only the next read is queued.
    let dense = true;
    let guess = firstPosition(parts, 0);
    const readAhead = () => {
      const most = dense ? MAX_READS_AHEAD : 1;
      const mostLarge = dense ? LARGE_READS_AHEAD : 1;
      while (guess && ahead.length < most) {
        const pages = pagesAt(guess.to, guess.address, p);
        const large = pages * 8 >= p.chunk;
        if (large && largeAhead === mostLarge) break;
        const slot = large && !p.copy ? (freeSlots.pop() as number) : -1;
        const out = slot < 0 ? new BigUint64Array(pages) : buffers[slot];
        const entries = handle.readAsync(guess.address, pages, out);
        // Its failure (the process exited) is thrown where the walk awaits
        // it; until then it must not count as unhandled while the caller
        // awaits something else.
        entries.catch(() => {});
        ahead.push({ at: guess, large, slot, entries });
        if (large) largeAhead++;
        guess = positionAfter(parts, guess, p);
      }
    };
    readAhead();
    while (ahead.length > 0) {
      const read = ahead.shift() as Read;
      if (read.large) largeAhead--;
      const at = read.at;
      const entries = await read.entries;
      const step = settle(handle, maps[at.mappingIndex], at.mappingIndex, at.address, at.to, entries);
      dense = step.chunk.entries !== null && native.firstPopulated(entries, entries.length - 1, 1) === 0;
      const next = step.next === null ? firstPosition(parts, at.mappingIndex + 1) : { ...at, address: step.next };
      if (!samePosition(ahead.length > 0 ? ahead[0].at : guess, next)) {
        // An empty chunk, widened by PAGEMAP_SCAN, ends past the reads
        // ahead: they were of the wrong pages. Their buffers are free once
        // they are done.
        await Promise.allSettled(ahead.map((r) => r.entries));
        for (const r of ahead) if (r.slot >= 0) freeSlots.push(r.slot);
        ahead.length = 0;
        largeAhead = 0;
        guess = next;
      }
      readAhead();
      yield step.chunk;
      // The caller asked for the next chunk: it is done with this buffer.
      if (read.slot >= 0) freeSlots.push(read.slot);
    }
  } finally {
    // A caller that stops early leaves reads in flight: close() lets them
    // finish natively, and their outcome concerns nobody now.
    handle.close();
  }
}

/** The same walk, synchronously, as an iterator. */
export function* walkSync(pid: number, options: WalkOptions = {}): Generator<WalkChunk> {
  const p = plan(pid, options);
  const handle = openPagemap(pid);
  try {
    const maps = readMaps(pid);
    const buffer = new BigUint64Array(p.copy ? 0 : p.chunk);
    for (let i = 0; i < maps.length; i++) {
      const mapping = maps[i];
      const part = span(mapping, p);
      if (!part) continue;
      const to = part[1];
      let address: bigint | null = part[0];
      while (address !== null) {
        const pages = pagesAt(to, address, p);
        const entries = handle.read(address, pages, p.copy ? new BigUint64Array(pages) : buffer);
        const step = settle(handle, mapping, i, address, to, entries);
        yield step.chunk;
        address = step.next;
      }
    }
  } finally {
    handle.close();
  }
}
