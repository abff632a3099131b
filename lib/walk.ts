// walk(pid): the page state of every mapping (or of the parts of them in a
// range), streamed in bounded chunks so that a process of any size is walked
// in constant memory. Empty stretches
// of large mappings are skipped with PAGEMAP_SCAN and reported as one chunk
// without entries, so a sparse 128 TiB space costs what its pages cost.

import { addressToPage, validatePageCount, validatePid } from './errors';
import { KERNEL_HALF, PAGE_SHIFT } from './page';
import { countStates, openPagemap, type PagemapHandle } from './pagemap';
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
  const counts = countStates(entries);
  const afterRead = address + (BigInt(entries.length) << PAGE_SHIFT);
  if (counts.present + counts.swapped > 0) {
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

/** Streams the page states of every mapping of `pid`, reading on the thread pool. */
export async function* walk(pid: number, options: WalkOptions = {}): AsyncGenerator<WalkChunk> {
  const p = plan(pid, options);
  const handle = openPagemap(pid);
  try {
    const maps = await readMapsAsync(pid);
    const buffer = new BigUint64Array(p.copy ? 0 : p.chunk);
    for (let i = 0; i < maps.length; i++) {
      const mapping = maps[i];
      const part = span(mapping, p);
      if (!part) continue;
      const to = part[1];
      let address: bigint | null = part[0];
      while (address !== null) {
        const pages = pagesAt(to, address, p);
        const entries = await handle.readAsync(address, pages, p.copy ? new BigUint64Array(pages) : buffer);
        const step = settle(handle, mapping, i, address, to, entries);
        yield step.chunk;
        address = step.next;
      }
    }
  } finally {
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
