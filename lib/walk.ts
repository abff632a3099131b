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
   * (every entry zero). Reused between chunks, and by later walks once
   * this one has ended, unless `copy` is set: read it before asking for the
   * next chunk.
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

/**
 * Full-size buffers of walks that have ended, for the next walk: a fresh
 * 512 KiB buffer costs 1.4-2 ms of page faults on this VM (11-15 us a page,
 * on the JS thread), against a 0.8 ms read of its 64K entries, and walk()
 * took three per call. At most SPARE_BUFFERS of at most DEFAULT_CHUNK
 * entries are kept (1.5 MiB): a walk with larger chunks allocates its own.
 * A walk gives back only the buffers no read is in flight into and its
 * caller no longer holds (it asked for the chunk after the last one).
 */
const SPARE_BUFFERS = 5;
const spareBuffers: BigUint64Array[] = [];

function takeBuffer(pages: number): BigUint64Array {
  for (let i = spareBuffers.length; i-- > 0; ) {
    if (spareBuffers[i].length === pages) return spareBuffers.splice(i, 1)[0];
  }
  // The addon's memory, which the pool thread reads into directly: no copy
  // of each chunk on the JS thread.
  return native.entryBuffer(pages) ?? new BigUint64Array(pages);
}

function keepBuffer(buffer: BigUint64Array, pages: number): void {
  // A buffer transferred away (Node 22+) reads as empty: never kept.
  if (buffer.length !== pages || pages > DEFAULT_CHUNK) return;
  if (spareBuffers.length === SPARE_BUFFERS) spareBuffers.shift();
  spareBuffers.push(buffer);
}

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

/**
 * The part of a mapping to walk, in pages (numbers: exact below 2^53 pages,
 * and cheaper than bigints per read), with its first address as a bigint
 * for the chunk that starts there.
 */
interface Part {
  fromPage: number;
  toPage: number;
  from: bigint;
}

/** The part of a mapping to walk, or null when it lies outside the range or in the kernel's half. */
function span(mapping: Mapping, p: Plan): Part | null {
  // bigints: no Math.min/Math.max.
  let from = mapping.start;
  if (p.start > from) from = p.start;
  let to = mapping.end;
  if (p.end < to) to = p.end;
  if (KERNEL_HALF < to) to = KERNEL_HALF;
  if (!(from < to && p.filter(mapping))) return null;
  return { fromPage: Number(from >> PAGE_SHIFT), toPage: Number(to >> PAGE_SHIFT), from };
}

/** Where a read starts: the mapping, and the page within the part of it to walk. */
interface Position {
  mappingIndex: number;
  page: number;
  part: Part;
}

function addressOf(at: Position): bigint {
  return at.page === at.part.fromPage ? at.part.from : BigInt(at.page) << PAGE_SHIFT;
}

// Turns one read at `at` into a chunk and says at which page the next read
// starts (null: the mapping is done). Empty reads are widened with
// PAGEMAP_SCAN to the next populated page, so a sparse mapping yields one
// entry-less chunk per gap instead of one per 512 KiB.
function settle(
  handle: PagemapHandle,
  mapping: Mapping,
  at: Position,
  entries: BigUint64Array,
): { chunk: WalkChunk; next: number | null } {
  const mappingIndex = at.mappingIndex;
  const address = addressOf(at);
  const to = at.part.toPage;
  const afterRead = at.page + entries.length;
  // Only whether any entry is present or swapped matters here: the native
  // check stops at the first one, where counting every state cost a dense
  // chunk a pass over its 64K entries.
  if (native.firstPopulated(entries, 0, entries.length) < entries.length) {
    const chunk = { mapping, mappingIndex, address, pages: entries.length, entries };
    return { chunk, next: afterRead >= to ? null : afterRead };
  }
  let next = afterRead;
  if (afterRead < to) {
    const found = handle.nextPopulated(BigInt(afterRead) << PAGE_SHIFT, BigInt(to) << PAGE_SHIFT);
    if (found !== null) next = Number(found >> PAGE_SHIFT);
  }
  const chunk = { mapping, mappingIndex, address, pages: next - at.page, entries: null };
  return { chunk, next: next >= to ? null : next };
}

/** The first part to walk of mapping `from` or a later one; null past the last. */
function firstPosition(parts: (Part | null)[], from: number): Position | null {
  for (let i = from; i < parts.length; i++) {
    const part = parts[i];
    if (part) return { mappingIndex: i, page: part.fromPage, part };
  }
  return null;
}

/**
 * Holes between mappings that one read covers along with them (their
 * entries read as zero and are skipped): up to a 2 MiB page table's worth,
 * about what a pread call costs the kernel anyway.
 */
const MAX_HOLE_PAGES = 512;
/**
 * Mappings one read covers at most: their chunks are settled as the read
 * lands, and the walk's memory stays bounded whatever their number.
 */
const MAX_PIECES = 1024;

/** A part of a mapping that one read covers: `pages` entries from `offset` in the read. */
interface Piece {
  at: Position;
  offset: number;
  pages: number;
}

/** One pread: a chunk of a mapping, or the whole parts of several small neighbouring mappings. */
interface ReadPlan {
  page: number;
  pages: number;
  pieces: Piece[];
  /** Where the next read starts if the last piece finds a page (settle() goes straight on). */
  after: Position | null;
}

/**
 * The read at `at`: a chunk of its mapping, joined by the following parts
 * while each fits whole in the same chunk of address space. One pread then
 * serves many small mappings (60,000 one-page mappings took 60,000 preads
 * and, in walk(), as many promises and hand-offs); the chunks handed out
 * stay the same, one per mapping part, views into the read's entries.
 */
function planRead(parts: (Part | null)[], at: Position, p: Plan): ReadPlan {
  const to = at.part.toPage;
  const pages = Math.min(p.chunk, to - at.page);
  const pieces: Piece[] = [{ at, offset: 0, pages }];
  let end = at.page + pages;
  if (end < to) return { page: at.page, pages, pieces, after: { ...at, page: end } };
  const limit = at.page + p.chunk;
  let after = firstPosition(parts, at.mappingIndex + 1);
  while (
    after !== null &&
    pieces.length < MAX_PIECES &&
    after.part.toPage <= limit &&
    after.page - end <= MAX_HOLE_PAGES
  ) {
    pieces.push({ at: after, offset: after.page - at.page, pages: after.part.toPage - after.page });
    end = after.part.toPage;
    after = firstPosition(parts, after.mappingIndex + 1);
  }
  return { page: at.page, pages: end - at.page, pieces, after };
}

/** A piece's entries: the read's own when it is the only one, else a view (or with `copy`, a copy). */
function pieceEntries(read: ReadPlan, piece: Piece, entries: BigUint64Array, p: Plan): BigUint64Array {
  if (read.pieces.length === 1) return entries;
  const end = piece.offset + piece.pages;
  return p.copy ? entries.slice(piece.offset, end) : entries.subarray(piece.offset, end);
}

/**
 * The chunks of one read, and where the walk goes on: after the last piece,
 * unless PAGEMAP_SCAN moved it (an empty chunk widened to the next populated
 * page, which only a read that did not reach its mapping's end can be).
 */
function settleRead(
  handle: PagemapHandle,
  maps: Mapping[],
  parts: (Part | null)[],
  read: ReadPlan,
  entries: BigUint64Array,
  p: Plan,
): { chunks: WalkChunk[]; next: Position | null; lastPopulated: boolean } {
  const chunks: WalkChunk[] = [];
  let next: Position | null = null;
  let lastPopulated = false;
  for (const piece of read.pieces) {
    const at = piece.at;
    const own = pieceEntries(read, piece, entries, p);
    const step = settle(handle, maps[at.mappingIndex], at, own);
    chunks.push(step.chunk);
    next = step.next === null ? firstPosition(parts, at.mappingIndex + 1) : { ...at, page: step.next };
    lastPopulated = step.chunk.entries !== null && native.firstPopulated(own, own.length - 1, 1) === 0;
  }
  return { chunks, next, lastPopulated };
}

function samePosition(a: Position | null, b: Position | null): boolean {
  return a === null || b === null ? a === b : a.mappingIndex === b.mappingIndex && a.page === b.page;
}

/**
 * Reads queued ahead of the chunk the caller holds. A handle runs its reads
 * one after another on one pool thread; with reads queued, the next is
 * waiting when one ends and that thread reads on while JavaScript takes the
 * entries of the last (with one read at a time it idled about 110 us a
 * chunk for the round trip). Full-size reads alternate between READERS
 * handles, each drained by a pool thread of its own, so that two chunks
 * are read at once (pagemap reads at different offsets are independent;
 * the kernel takes the target's mmap lock shared, 512 entries at a time).
 * Two full-size reads per reader are queued, so that neither thread's
 * drainer runs dry between reads (a drainer started again costs a pool
 * thread's wake-up), and as many smaller ones as fit under MAX_READS_AHEAD,
 * whose reads take microseconds: one at a time, the round trip would
 * dominate.
 */
const READERS = 2;
const LARGE_READS_AHEAD = 2 * READERS;
const MAX_READS_AHEAD = 32;

interface Read {
  plan: ReadPlan;
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
  // The second reader's handle, opened at the first read it takes.
  let second: PagemapHandle | undefined;
  let largeReads = 0;
  const ahead: Read[] = [];
  const buffers: (BigUint64Array | undefined)[] = [];
  let freeSlots: number[] = [];
  try {
    const maps = await readMapsAsync(pid);
    const parts = maps.map((m) => span(m, p));
    // Full-size buffers: one for the chunk the caller holds, one per large
    // read ahead, each taken at its first use (a process with no large
    // mapping needs none). A smaller read gets an array of its own: cheap at
    // that size, and it spares a buffer.
    if (!p.copy) freeSlots = Array.from({ length: LARGE_READS_AHEAD + 1 }, (_, i) => i);
    let largeAhead = 0;
    let piecesAhead = 0;
    // Whether the last chunk's last page was populated. When it was not,
    // the pages after it are likely empty too (a sparse mapping), and an
    // empty chunk sends the walk elsewhere with PAGEMAP_SCAN: reads queued
    // past it would be of the wrong pages. Then only the next read is queued.
    let dense = true;
    let guess = firstPosition(parts, 0);
    const readAhead = () => {
      const most = dense ? MAX_READS_AHEAD : 1;
      const mostLarge = dense ? LARGE_READS_AHEAD : 1;
      while (guess && ahead.length < most && piecesAhead < MAX_PIECES) {
        const r = planRead(parts, guess, p);
        piecesAhead += r.pieces.length;
        const large = r.pages * 8 >= p.chunk;
        if (large && largeAhead === mostLarge) break;
        const slot = large && !p.copy ? (freeSlots.pop() as number) : -1;
        if (slot >= 0) buffers[slot] ??= takeBuffer(p.chunk);
        const out = slot < 0 ? new BigUint64Array(r.pages) : (buffers[slot] as BigUint64Array);
        let reader = handle;
        if (large && largeReads++ % READERS === 1) {
          if (second === undefined) {
            // A target gone meanwhile fails the open with ENOENT: its reads
            // on the first handle say ESRCH, as a walk's failure should.
            try {
              second = openPagemap(pid);
            } catch {
              second = handle;
            }
          }
          reader = second;
        }
        const entries = reader.readAsync(BigInt(r.page) << PAGE_SHIFT, r.pages, out);
        // Its failure (the process exited) is thrown where the walk awaits
        // it; until then it must not count as unhandled while the caller
        // awaits something else.
        entries.catch(() => {});
        ahead.push({ plan: r, large, slot, entries });
        if (large) largeAhead++;
        guess = r.after;
      }
    };
    readAhead();
    while (ahead.length > 0) {
      const read = ahead.shift() as Read;
      if (read.large) largeAhead--;
      piecesAhead -= read.plan.pieces.length;
      const entries = await read.entries;
      const step = settleRead(handle, maps, parts, read.plan, entries, p);
      dense = step.lastPopulated;
      if (!samePosition(ahead.length > 0 ? ahead[0].plan.pieces[0].at : guess, step.next)) {
        // An empty chunk, widened by PAGEMAP_SCAN, ends past the reads
        // ahead: they were of the wrong pages. Their buffers are free once
        // they are done.
        await Promise.allSettled(ahead.map((r) => r.entries));
        for (const r of ahead) if (r.slot >= 0) freeSlots.push(r.slot);
        ahead.length = 0;
        largeAhead = 0;
        piecesAhead = 0;
        guess = step.next;
      }
      readAhead();
      for (const chunk of step.chunks) yield chunk;
      // The caller asked for the next chunk: it is done with this buffer.
      if (read.slot >= 0) freeSlots.push(read.slot);
    }
  } finally {
    // A caller that stops early leaves reads in flight: close() lets them
    // finish natively, and their outcome concerns nobody now.
    handle.close();
    second?.close();
    for (const slot of freeSlots) {
      const buffer = buffers[slot];
      if (buffer) keepBuffer(buffer, p.chunk);
    }
  }
}

/** The same walk, synchronously, as an iterator. */
export function* walkSync(pid: number, options: WalkOptions = {}): Generator<WalkChunk> {
  const p = plan(pid, options);
  const handle = openPagemap(pid);
  let buffer: BigUint64Array | undefined;
  let done = false;
  try {
    const maps = readMaps(pid);
    const parts = maps.map((m) => span(m, p));
    if (!p.copy) buffer = takeBuffer(p.chunk);
    let at = firstPosition(parts, 0);
    while (at !== null) {
      const r = planRead(parts, at, p);
      const entries = handle.read(BigInt(r.page) << PAGE_SHIFT, r.pages, buffer ?? new BigUint64Array(r.pages));
      const step = settleRead(handle, maps, parts, r, entries, p);
      for (const chunk of step.chunks) yield chunk;
      at = step.next;
    }
    done = true;
  } finally {
    handle.close();
    // Only once the caller asked for the chunk after the last: one that
    // stopped early may still hold the buffer.
    if (done && buffer) keepBuffer(buffer, p.chunk);
  }
}
