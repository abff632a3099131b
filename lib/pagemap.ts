// The pagemap reader: a handle on /proc/PID/pagemap for bulk reads and
// PAGEMAP_SCAN, the entry decoder, and bulk decoders that never create one
// JavaScript object per page.
import { addressToPage, describe, validateEntryBuffer, validatePageCount, validatePid } from './errors';
import { type NativePagemapHandle, native } from './native';
import { PAGE_SHIFT } from './page';
import { scanDisabled } from './switches';

/** Bits of a pagemap entry (Documentation/admin-guide/mm/pagemap.rst). */
export const PM_PFN_MASK = (1n << 55n) - 1n;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_EXCLUSIVE = 1n << 56n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_GUARD = 1n << 58n;
export const PM_FILE = 1n << 61n;
export const PM_SWAPPED = 1n << 62n;
export const PM_PRESENT = 1n << 63n;
/** Every flag bit: entries equal under this mask are in the same state. */
export const PM_FLAG_MASK = ~PM_PFN_MASK & ((1n << 64n) - 1n);

export interface DecodedEntry {
  present: boolean;
  swapped: boolean;
  /** File page or shared anonymous (bit 61). */
  file: boolean;
  /** Mapped exactly once (bit 56): the kernel's mapcount == 1. */
  exclusive: boolean;
  softDirty: boolean;
  uffdWp: boolean;
  guard: boolean;
  /** Page frame number of a present page; 0 when the reader lacks CAP_SYS_ADMIN. */
  pfn: bigint | null;
  swapType: number | null;
  swapOffset: bigint | null;
  /**
   * Bits 0-54 verbatim, whatever the state (the PFN or swap fields above
   * are views of them). Lets encodeEntry() restore every bit.
   */
  low?: bigint;
  /** Bits 59-60, zero on every kernel to date; kept so that nothing is lost. */
  reserved?: number;
}

/** Decodes one raw 64-bit pagemap entry. For bulk work use the helpers below. */
export function decodeEntry(entry: bigint): DecodedEntry {
  if (typeof entry !== 'bigint') throw new TypeError(`entry must be a bigint, got ${describe(entry)}`);
  if (entry < 0n || entry >= 1n << 64n) throw new RangeError('entry must be an unsigned 64-bit value');
  const present = (entry & PM_PRESENT) !== 0n;
  const swapped = (entry & PM_SWAPPED) !== 0n;
  const low = entry & PM_PFN_MASK;
  return {
    present,
    swapped,
    file: (entry & PM_FILE) !== 0n,
    exclusive: (entry & PM_EXCLUSIVE) !== 0n,
    softDirty: (entry & PM_SOFT_DIRTY) !== 0n,
    uffdWp: (entry & PM_UFFD_WP) !== 0n,
    guard: (entry & PM_GUARD) !== 0n,
    pfn: present ? low : null,
    swapType: swapped ? Number(low & 0x1fn) : null,
    swapOffset: swapped ? low >> 5n : null,
    low,
    reserved: Number((entry >> 59n) & 3n),
  };
}

/** Builds a raw entry from its decoded form (the inverse of decodeEntry). */
export function encodeEntry(d: DecodedEntry): bigint {
  let e = 0n;
  if (d.present) e |= PM_PRESENT;
  if (d.swapped) e |= PM_SWAPPED;
  if (d.file) e |= PM_FILE;
  if (d.exclusive) e |= PM_EXCLUSIVE;
  if (d.softDirty) e |= PM_SOFT_DIRTY;
  if (d.uffdWp) e |= PM_UFFD_WP;
  if (d.guard) e |= PM_GUARD;
  if (d.present && d.pfn !== null) e |= d.pfn & PM_PFN_MASK;
  if (d.swapped && d.swapType !== null && d.swapOffset !== null) {
    e |= (BigInt(d.swapType) & 0x1fn) | ((d.swapOffset << 5n) & PM_PFN_MASK);
  }
  if (!d.present && !d.swapped && d.low !== undefined) e |= d.low & PM_PFN_MASK;
  if (d.reserved !== undefined) e |= (BigInt(d.reserved) & 3n) << 59n;
  return e;
}

export interface StateCounts {
  pages: number;
  present: number;
  swapped: number;
  /** Neither present nor swapped. */
  notPresent: number;
  file: number;
  exclusive: number;
  softDirty: number;
  uffdWp: number;
  guard: number;
  /** Present entries with a non-zero PFN. */
  presentWithPfn: number;
  /** False when present pages were seen but all PFNs read as 0 (no CAP_SYS_ADMIN). */
  pfnsVisible: boolean;
}

const countScratch = new Float64Array(10);

/** Counts the entries in each state, in one native pass. */
export function countStates(entries: BigUint64Array, start = 0, end = entries.length): StateCounts {
  checkSlice(entries, start, end);
  native.countStates(entries, start, end - start, countScratch);
  const c = countScratch;
  return {
    pages: c[0],
    present: c[1],
    swapped: c[2],
    notPresent: c[3],
    file: c[4],
    exclusive: c[5],
    softDirty: c[6],
    uffdWp: c[7],
    guard: c[8],
    presentWithPfn: c[9],
    pfnsVisible: c[1] === 0 || c[9] > 0,
  };
}

export interface PfnList {
  /** The PFNs of present pages, in address order (a view of `out`). */
  pfns: BigUint64Array;
  /** How many present pages there were (may exceed pfns.length if `out` was short). */
  present: number;
  pfnsVisible: boolean;
}

/** Copies the PFNs of present entries into `out` (allocated when omitted). */
export function extractPfns(entries: BigUint64Array, out?: BigUint64Array): PfnList {
  checkSlice(entries, 0, entries.length);
  const target = out ?? new BigUint64Array(entries.length);
  validateEntryBuffer(target, 0);
  const present = native.extractPfns(entries, 0, entries.length, target);
  const pfns = target.subarray(0, Math.min(present, target.length));
  let visible = present === 0;
  for (let i = 0; i < pfns.length && !visible; i++) visible = pfns[i] !== 0n;
  return { pfns, present, pfnsVisible: visible };
}

export interface RunLengths {
  /** Number of runs. */
  count: number;
  /** (firstIndex, length, maskedState) triples, count * 3 values. */
  triples: BigUint64Array;
}

/**
 * Run-length encodes entries by state: consecutive entries whose bits agree
 * under `mask` (by default every flag bit, PFN ignored) form one run.
 */
export function runLengths(entries: BigUint64Array, mask: bigint = PM_FLAG_MASK): RunLengths {
  checkSlice(entries, 0, entries.length);
  if (typeof mask !== 'bigint') throw new TypeError(`mask must be a bigint, got ${describe(mask)}`);
  if (mask < 0n || mask >= 1n << 64n) throw new RangeError('mask must be an unsigned 64-bit value');
  let triples = new BigUint64Array(Math.min(entries.length, 1024) * 3);
  let count = native.runLengths(entries, 0, entries.length, mask, triples);
  if (count * 3 > triples.length) {
    triples = new BigUint64Array(count * 3);
    count = native.runLengths(entries, 0, entries.length, mask, triples);
  }
  return { count, triples: triples.subarray(0, count * 3) };
}

function checkSlice(entries: BigUint64Array, start: number, end: number): void {
  if (!(entries instanceof BigUint64Array))
    throw new TypeError(`entries must be a BigUint64Array, got ${describe(entries)}`);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > entries.length) {
    throw new RangeError(`invalid range ${start}..${end} of ${entries.length} entries`);
  }
}

/** PAGEMAP_SCAN categories (GUARD: Linux 6.15+; see scanCategories()). */
export const ScanCategory = {
  WPALLOWED: 1 << 0,
  WRITTEN: 1 << 1,
  FILE: 1 << 2,
  PRESENT: 1 << 3,
  SWAPPED: 1 << 4,
  PFNZERO: 1 << 5,
  HUGE: 1 << 6,
  SOFT_DIRTY: 1 << 7,
  GUARD: 1 << 8,
} as const;
const ALL_CATEGORIES = 0x1ff;

export interface ScanOptions {
  /** Pages must have all of these categories (after inversion). */
  require?: number;
  /** Categories whose sense is inverted before matching. */
  inverted?: number;
  /** Pages must have at least one of these. Default: PRESENT | SWAPPED. */
  anyOf?: number;
  /** Categories reported, and on which adjacent pages merge. Default: every one the kernel knows (scanCategories()). */
  report?: number;
  /** Stop after this many matching pages (0: no limit). */
  maxPages?: number;
  /** Regions fetched per ioctl (the walk resumes at walk_end). Default 4096. */
  batch?: number;
}

export interface ScanRegion {
  start: bigint;
  end: bigint;
  categories: number;
  present: boolean;
  swapped: boolean;
  file: boolean;
  pfnZero: boolean;
  huge: boolean;
  guard: boolean;
  written: boolean;
  softDirty: boolean;
}

export interface ScanResult {
  /** False when the kernel lacks PAGEMAP_SCAN (before 6.7) or it is disabled. */
  supported: boolean;
  regions: ScanRegion[];
  /** Where the walk ended: `end`, or earlier when maxPages stopped it. */
  walkEnd: bigint;
}

let knownCategories: number | undefined;

/**
 * The PAGEMAP_SCAN categories this kernel knows, as a ScanCategory mask:
 * all of them from Linux 6.15, all but GUARD on 6.7-6.14, 0 without
 * PAGEMAP_SCAN (or with PAGEWALK_DISABLE_SCAN=1). Asked of the kernel once.
 * scan() asking for one it does not know fails with EINVAL.
 */
export function scanCategories(): number {
  if (scanDisabled()) return 0;
  knownCategories ??= native.scanCategories();
  return knownCategories;
}

function checkCategories(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 0 || v > ALL_CATEGORIES)
    throw new RangeError(`${name} must be a mask of ScanCategory bits`);
  return v;
}

const disposeSymbol: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('nodejs.dispose');

/** An open /proc/PID/pagemap. Close it, or let the garbage collector do so. */
export class PagemapHandle {
  readonly pid: number;
  readonly path: string;
  #native: NativePagemapHandle;
  #scanState = new Float64Array(1);
  #scanBuffer: BigUint64Array | undefined;

  /** @internal use openPagemap() */
  constructor(pid: number) {
    this.pid = validatePid(pid);
    this.path = `/proc/${pid}/pagemap`;
    this.#native = new native.PagemapHandle(pid);
  }

  get closed(): boolean {
    return !this.#native.isOpen();
  }

  /**
   * Reads the entries of `pageCount` pages from `address` into `out` (or a
   * new array) and returns them: always `pageCount` entries. Pages at or
   * past the end of the target's user address space (0x7ffffffff000 on
   * x86-64 with 4-level page tables; [vsyscall] lies beyond it) have no
   * entries: asking for them throws a RangeError naming that end. A process
   * that has exited raises ESRCH.
   */
  read(address: bigint | number, pageCount: number, out?: BigUint64Array): BigUint64Array {
    const [first, count, target] = this.#prepare(address, pageCount, out);
    const got = this.#native.read(first, count, target, 0);
    if (got < count) this.#beyondUserSpace(first, count, got);
    return target.subarray(0, got);
  }

  /** Like read(), on the libuv thread pool: the event loop stays free. */
  async readAsync(address: bigint | number, pageCount: number, out?: BigUint64Array): Promise<BigUint64Array> {
    const [first, count, target] = this.#prepare(address, pageCount, out);
    const got = await this.#native.readAsync(first, count, target, 0);
    // The addon reads into its own memory and copies on completion only
    // when `out` still holds the entries: a buffer detached or shrunk
    // meanwhile was left alone, and the entries are lost.
    if (target.length < got) {
      throw new TypeError(
        `${out === undefined ? 'the buffer' : 'out'} was detached or shrunk while the read was in flight`,
      );
    }
    if (got < count) this.#beyondUserSpace(first, count, got);
    return target.subarray(0, got);
  }

  /**
   * The addon reads short only past the end of user space (an exited
   * process raises ESRCH): find that end and throw. Rare, so the end is
   * searched for with one-entry reads rather than known in advance; it
   * differs between processes (a 32-bit process ends at 4 GiB).
   */
  #beyondUserSpace(first: number, count: number, got: number): never {
    let end = first + got;
    if (got === 0) {
      // Page 0 answers while the process lives; `first` did not.
      const one = new BigUint64Array(1);
      let below = 0;
      end = first;
      while (end - below > 1) {
        const mid = below + Math.floor((end - below) / 2);
        if (this.#native.read(mid, 1, one, 0) === 1) below = mid;
        else end = mid;
      }
    }
    const hex = (page: number) => `0x${(BigInt(page) << PAGE_SHIFT).toString(16)}`;
    throw new RangeError(
      `pages ${hex(first)}-${hex(first + count)} reach past the end of user space (${hex(end)}) of process ${this.pid}: pagemap has no entries there`,
    );
  }

  #prepare(address: bigint | number, pageCount: number, out?: BigUint64Array): [number, number, BigUint64Array] {
    const first = addressToPage(address);
    const count = validatePageCount(pageCount, 'pageCount', 2 ** 28);
    if (first + count > 2 ** 52) throw new RangeError('address + pageCount overflows the 64-bit address space');
    const target = out === undefined ? new BigUint64Array(count) : validateEntryBuffer(out, count);
    return [first, count, target];
  }

  /**
   * PAGEMAP_SCAN over [start, end): run-length regions with their
   * categories. By default the populated (present or swapped) regions.
   */
  scan(start: bigint | number, end: bigint | number, options: ScanOptions = {}): ScanResult {
    const startPage = addressToPage(start, 'start');
    const endPage = addressToPage(end, 'end');
    if (endPage < startPage) throw new RangeError('end must not be below start');
    const mask = checkCategories(options.require, 'require', 0);
    const inverted = checkCategories(options.inverted, 'inverted', 0);
    const anyOf = checkCategories(options.anyOf, 'anyOf', ScanCategory.PRESENT | ScanCategory.SWAPPED);
    const report = checkCategories(options.report, 'report', scanCategories() || ALL_CATEGORIES);
    const maxPages = validatePageCount(options.maxPages ?? 0, 'maxPages');
    const batch = validatePageCount(options.batch ?? 4096, 'batch', 1 << 20);
    if (batch < 1) throw new RangeError('batch must be at least 1');
    const regions: ScanRegion[] = [];
    if (scanDisabled()) return { supported: false, regions, walkEnd: BigInt(startPage) << PAGE_SHIFT };
    if (!this.#scanBuffer || this.#scanBuffer.length < batch * 3) this.#scanBuffer = new BigUint64Array(batch * 3);
    const buf = this.#scanBuffer;
    let page = startPage;
    let remaining = maxPages;
    while (page < endPage) {
      const n = this.#native.scan(page, endPage, inverted, mask, anyOf, report, remaining, buf, this.#scanState);
      if (n < 0) return { supported: false, regions: [], walkEnd: BigInt(startPage) << PAGE_SHIFT };
      for (let i = 0; i < n; i++) {
        const c = Number(buf[3 * i + 2]);
        regions.push({
          start: buf[3 * i],
          end: buf[3 * i + 1],
          categories: c,
          present: (c & ScanCategory.PRESENT) !== 0,
          swapped: (c & ScanCategory.SWAPPED) !== 0,
          file: (c & ScanCategory.FILE) !== 0,
          pfnZero: (c & ScanCategory.PFNZERO) !== 0,
          huge: (c & ScanCategory.HUGE) !== 0,
          guard: (c & ScanCategory.GUARD) !== 0,
          written: (c & ScanCategory.WRITTEN) !== 0,
          softDirty: (c & ScanCategory.SOFT_DIRTY) !== 0,
        });
        if (maxPages) remaining -= Number((buf[3 * i + 1] - buf[3 * i]) >> PAGE_SHIFT);
      }
      const walkEnd = this.#scanState[0];
      if (n === 0 || walkEnd >= endPage || (maxPages && remaining <= 0)) {
        page = n === 0 ? Math.max(walkEnd, endPage) : walkEnd;
        break;
      }
      page = walkEnd;
    }
    return { supported: true, regions, walkEnd: BigInt(Math.min(page, endPage)) << PAGE_SHIFT };
  }

  /**
   * Address of the first present or swapped page in [from, to), or `to`
   * when there is none; null when PAGEMAP_SCAN is unavailable.
   */
  nextPopulated(from: bigint | number, to: bigint | number): bigint | null {
    const r = this.scan(from, to, { maxPages: 1, batch: 1, report: ScanCategory.PRESENT | ScanCategory.SWAPPED });
    if (!r.supported) return null;
    return r.regions.length ? r.regions[0].start : BigInt(to);
  }

  close(): void {
    this.#native.close();
  }

  [Symbol.for('nodejs.dispose')](): void {
    this.close();
  }
}
// Symbol.dispose where the runtime has it (Node 20.4+), so `using` works.
if (disposeSymbol !== Symbol.for('nodejs.dispose')) {
  Object.defineProperty(PagemapHandle.prototype, disposeSymbol, {
    value: PagemapHandle.prototype.close,
    configurable: true,
  });
}

/** Opens /proc/PID/pagemap once; PFN visibility is decided by the kernel now. */
export function openPagemap(pid: number): PagemapHandle {
  return new PagemapHandle(pid);
}
