// walk(pid): the page state of every mapping, streamed in bounded chunks so
// that a process of any size is walked in constant memory. Empty stretches
// of large mappings are skipped with PAGEMAP_SCAN and reported as one chunk
// without entries, so a sparse 128 TiB space costs what its pages cost.

import { validatePageCount, validatePid } from './errors';
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
}

const DEFAULT_CHUNK = 64 * 1024;

interface Plan {
  pid: number;
  chunk: number;
  copy: boolean;
  filter: (m: Mapping) => boolean;
}

function plan(pid: number, options: WalkOptions): Plan {
  validatePid(pid);
  const chunk = validatePageCount(options.chunkPages ?? DEFAULT_CHUNK, 'chunkPages', 1 << 24);
  if (chunk < 1) throw new RangeError('chunkPages must be at least 1');
  if (options.filter !== undefined && typeof options.filter !== 'function')
    throw new TypeError('filter must be a function');
  return { pid, chunk, copy: options.copy ?? false, filter: options.filter ?? (() => true) };
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
  pages: number,
  entries: BigUint64Array,
): { chunk: WalkChunk | null; next: bigint | null } {
  if (entries.length === 0) return { chunk: null, next: null }; // beyond user space ([vsyscall])
  const counts = countStates(entries);
  const afterRead = address + (BigInt(entries.length) << 12n);
  if (counts.present + counts.swapped > 0) {
    const chunk = { mapping, mappingIndex, address, pages: entries.length, entries };
    return { chunk, next: entries.length < pages || afterRead >= mapping.end ? null : afterRead };
  }
  let next = afterRead;
  if (afterRead < mapping.end && entries.length === pages) {
    next = handle.nextPopulated(afterRead, mapping.end) ?? afterRead;
  }
  const chunk = { mapping, mappingIndex, address, pages: Number((next - address) >> 12n), entries: null };
  return { chunk, next: entries.length < pages || next >= mapping.end ? null : next };
}

function pagesAt(mapping: Mapping, address: bigint, p: Plan): number {
  return Math.min(p.chunk, Number((mapping.end - address) >> 12n));
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
      if (!p.filter(mapping)) continue;
      let address: bigint | null = mapping.start;
      while (address !== null && address < mapping.end) {
        const pages = pagesAt(mapping, address, p);
        const entries = await handle.readAsync(address, pages, p.copy ? new BigUint64Array(pages) : buffer);
        const step = settle(handle, mapping, i, address, pages, entries);
        if (step.chunk) yield step.chunk;
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
      if (!p.filter(mapping)) continue;
      let address: bigint | null = mapping.start;
      while (address !== null && address < mapping.end) {
        const pages = pagesAt(mapping, address, p);
        const entries = handle.read(address, pages, p.copy ? new BigUint64Array(pages) : buffer);
        const step = settle(handle, mapping, i, address, pages, entries);
        if (step.chunk) yield step.chunk;
        address = step.next;
      }
    }
  } finally {
    handle.close();
  }
}
