import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countStates,
  decodeEntry,
  encodeEntry,
  extractPfns,
  openPagemap,
  PM_FLAG_MASK,
  readMaps,
  runLengths,
  ScanCategory,
  scanCategories,
  walk,
  walkSync,
} from '../lib/index';
import { native } from '../lib/native';
import { type Fixture, killAllFixtures, startFixture } from './helpers/fixture';
import { kernel, skipUnless } from './helpers/kernel';
import { readKpage, readPagemapPlain, swapOn } from './helpers/oracle';

let fx: Fixture;

beforeAll(async () => {
  fx = await startFixture(['all']);
  fx.stop();
});
afterAll(killAllFixtures);

const region = (name: string) => fx.regions[name];

function entriesOf(name: string): BigUint64Array {
  const r = region(name);
  const h = openPagemap(fx.pid);
  try {
    return h.read(r.start, r.pages);
  } finally {
    h.close();
  }
}

describe('decoded page states of the fixture', () => {
  it('touched anonymous pages are present, exclusive, anonymous, with PFNs', () => {
    for (const e of entriesOf('anon')) {
      const d = decodeEntry(e);
      expect(d).toMatchObject({ present: true, swapped: false, file: false, exclusive: true });
      expect(d.pfn).toBeGreaterThan(0n);
    }
  });

  it('an untouched reservation has no page', () => {
    const r = region('reservation');
    const h = openPagemap(fx.pid);
    const c = countStates(h.read(r.start, 65536));
    h.close();
    expect(c).toMatchObject({ pages: 65536, present: 0, swapped: 0, notPresent: 65536 });
  });

  it('a file mapping read in its first 16 pages: those present as file pages, the far half absent', () => {
    const e = entriesOf('file');
    for (let i = 0; i < 16; i++) expect(decodeEntry(e[i])).toMatchObject({ present: true, file: true });
    for (let i = 128; i < 256; i++) expect(decodeEntry(e[i]).present).toBe(false);
  });

  it('an anonymous range only read: the shared zero page, or pages of its own, as the kernel probe found', () => {
    const e = entriesOf('zero');
    const decoded = [...e].map(decodeEntry);
    const pfns = new Set(decoded.map((d) => d.pfn));
    const flags = [...pfns].map((pfn) => readKpage('kpageflags', pfn as bigint));
    const zeroPage = (f: bigint) => ((f >> 24n) & 1n) === 1n; // KPF_ZERO_PAGE
    for (const d of decoded) expect(d).toMatchObject({ present: true, file: false });
    const readFault = kernel().readFault;
    expect(readFault).not.toBe('mixed');
    if (readFault === 'zero page') {
      expect(pfns.size).toBe(1);
      expect(decoded[0].exclusive).toBe(false);
      expect(flags.every(zeroPage)).toBe(true);
    } else {
      // A page of its own per read fault: 32 frames, anonymous, mapped here alone.
      expect(pfns.size).toBe(32);
      expect(decoded.every((d) => d.exclusive)).toBe(true);
      expect(flags.some(zeroPage)).toBe(false);
      expect(flags.every((f) => ((f >> 12n) & 1n) === 1n)).toBe(true); // KPF_ANON
    }
  });

  it('a range given the zero page by UFFDIO_ZEROPAGE maps the shared zero page', (ctx) => {
    skipUnless(ctx, kernel().uffdZeroPage, `UFFDIO_ZEROPAGE failed (errno ${kernel().raw.uffdZeroPageErrno})`);
    expect(region('uffdZero').installed).toBe(1);
    const e = entriesOf('uffdZero');
    const pfns = new Set([...e].map((x) => decodeEntry(x).pfn));
    expect(pfns.size).toBe(1);
    expect(decodeEntry(e[0])).toMatchObject({ present: true, exclusive: false, file: false });
    expect((readKpage('kpageflags', [...pfns][0] as bigint) >> 24n) & 1n).toBe(1n); // KPF_ZERO_PAGE
  });

  it('a MAP_SHARED region touched by two children: shared anonymous, mapcount 3', () => {
    for (const e of entriesOf('shared')) {
      const d = decodeEntry(e);
      expect(d).toMatchObject({ present: true, file: true, exclusive: false });
      expect(readKpage('kpagecount', d.pfn as bigint)).toBe(3n);
    }
  });

  it('copy-on-write pages: the half a child rewrote is shared by two, the rest by three', () => {
    const e = entriesOf('cow');
    for (let i = 0; i < 32; i++) {
      const d = decodeEntry(e[i]);
      expect(d).toMatchObject({ present: true, file: false, exclusive: false });
      expect(readKpage('kpagecount', d.pfn as bigint)).toBe(i < 16 ? 2n : 3n);
    }
  });

  it.runIf(swapOn())('pages pushed out with MADV_PAGEOUT are swap entries', () => {
    expect(region('swapped').pageout).toBe(1);
    for (const e of entriesOf('swapped')) {
      const d = decodeEntry(e);
      expect(d).toMatchObject({ present: false, swapped: true });
      expect(d.swapOffset).toBeGreaterThan(0n);
    }
  });

  it.runIf(swapOn())('swapped shared memory is invisible to pagemap', () => {
    expect(countStates(entriesOf('swappedShared'))).toMatchObject({ present: 0, swapped: 0 });
  });

  it('a guard region shows the guard bit where the kernel has MADV_GUARD_INSTALL', () => {
    const r = region('guard');
    expect(r.installed).toBe(kernel().guardRegions ? 1 : 0);
    const e = entriesOf('guard');
    for (let i = 0; i < 16; i++) {
      const d = decodeEntry(e[i]);
      if (r.installed === 1 && i >= 4 && i < 8) expect(d.guard).toBe(true);
      else expect(d).toMatchObject({ present: true, guard: false });
    }
  });

  it('a MADV_HUGEPAGE region is reported HUGE by PAGEMAP_SCAN when the kernel gave it a huge page', (ctx) => {
    skipUnless(ctx, kernel().pagemapScan, `no PAGEMAP_SCAN (errno ${kernel().raw.pagemapScanErrno})`);
    const r = region('thp');
    const h = openPagemap(fx.pid);
    const end = r.start + BigInt(r.pages * 4096);
    const scan = h.scan(r.start, end, { anyOf: ScanCategory.PRESENT });
    h.close();
    expect(scan.supported).toBe(true);
    const smaps = fs.readFileSync(`/proc/${fx.pid}/smaps`, 'utf8');
    const thpInMapping = /AnonHugePages:\s+([1-9]\d*) kB/.test(smaps);
    const huge = scan.regions.filter((x) => x.huge).reduce((s, x) => s + Number(x.end - x.start), 0);
    expect(scan.regions.every((x) => x.present)).toBe(true);
    skipUnless(
      ctx,
      thpInMapping,
      `the fixture got no huge page (madvise ${r.madvise}; the probe's MADV_HUGEPAGE range: ${kernel().thp ? '' : 'no '}THP)`,
    );
    expect(huge).toBe(2 << 20);
  });
});

describe('bulk decoders agree with a plain reader', () => {
  it('read() returns exactly what fs.readSync returns, mapping by mapping', () => {
    const h = openPagemap(fx.pid);
    for (const m of readMaps(fx.pid)) {
      if (m.start >= 1n << 63n) continue;
      const pages = Math.min(m.size / 4096, 1 << 16);
      const a = h.read(m.start, pages);
      const b = readPagemapPlain(fx.pid, m.start, pages);
      expect(a.length).toBe(b.length);
      expect(
        Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
      ).toBe(true);
    }
    h.close();
  });

  it('countStates, extractPfns and runLengths match decodeEntry on every entry', () => {
    for (const name of ['anon', 'file', 'zero', 'uffdZero', 'shared', 'cow', 'swapped', 'guard']) {
      const e = entriesOf(name);
      const decoded = [...e].map(decodeEntry);
      const c = countStates(e);
      expect(c.present).toBe(decoded.filter((d) => d.present).length);
      expect(c.swapped).toBe(decoded.filter((d) => d.swapped).length);
      expect(c.exclusive).toBe(decoded.filter((d) => d.exclusive).length);
      expect(c.file).toBe(decoded.filter((d) => d.file).length);
      expect(c.guard).toBe(decoded.filter((d) => d.guard).length);
      expect(c.pfnsVisible).toBe(true);
      const pfns = extractPfns(e);
      expect([...pfns.pfns]).toEqual(decoded.filter((d) => d.present).map((d) => d.pfn));
      const runs = runLengths(e);
      let covered = 0;
      for (let i = 0; i < runs.count; i++) {
        const [first, len, state] = [
          Number(runs.triples[3 * i]),
          Number(runs.triples[3 * i + 1]),
          runs.triples[3 * i + 2],
        ];
        expect(first).toBe(covered);
        for (let j = first; j < first + len; j++) expect(e[j] & PM_FLAG_MASK).toBe(state);
        if (i > 0) expect(runs.triples[3 * i - 1]).not.toBe(state);
        covered += len;
      }
      expect(covered).toBe(e.length);
      for (const x of e) expect(encodeEntry(decodeEntry(x))).toBe(x);
    }
  });

  it('readAsync() fills the caller buffer like read()', async () => {
    const r = region('anon');
    const h = openPagemap(fx.pid);
    const out = new BigUint64Array(r.pages);
    const got = await h.readAsync(r.start, r.pages, out);
    expect(got.buffer).toBe(out.buffer);
    expect([...got]).toEqual([...h.read(r.start, r.pages)]);
    h.close();
  });

  it('PAGEMAP_SCAN regions match the present and swapped runs of plain reads', (ctx) => {
    skipUnless(ctx, kernel().pagemapScan, `no PAGEMAP_SCAN (errno ${kernel().raw.pagemapScanErrno})`);
    const h = openPagemap(fx.pid);
    for (const name of ['anon', 'file', 'cow', 'swapped']) {
      const r = region(name);
      const end = r.start + BigInt(r.pages * 4096);
      const scan = h.scan(r.start, end, { batch: 2 });
      const e = h.read(r.start, r.pages);
      const populated = [...e].map((x) => decodeEntry(x).present || decodeEntry(x).swapped);
      const fromScan = new Array(r.pages).fill(false);
      for (const reg of scan.regions) {
        for (let a = reg.start; a < reg.end; a += 4096n) fromScan[Number((a - r.start) >> 12n)] = true;
      }
      expect(fromScan).toEqual(populated);
      expect(scan.walkEnd).toBe(end);
    }
    h.close();
  });
});

describe('walk()', () => {
  it('covers every mapping exactly and skips an empty reservation as one entry-less chunk', async () => {
    const maps = readMaps(fx.pid).filter((m) => m.start < 1n << 63n);
    const covered = new Map<number, number>();
    let emptyReservationChunk = false;
    const r = region('reservation');
    for await (const c of walk(fx.pid)) {
      covered.set(c.mappingIndex, (covered.get(c.mappingIndex) ?? 0) + c.pages);
      if (
        c.entries === null &&
        c.address <= r.start &&
        c.address + BigInt(c.pages * 4096) >= r.start + (1n << 30n) - (256n << 20n)
      ) {
        emptyReservationChunk = true;
      }
    }
    for (const [i, m] of maps.entries()) expect(covered.get(i)).toBe(m.size / 4096);
    expect(emptyReservationChunk).toBe(true);
  });

  it('walks only a range when given one: the parts of mappings inside it, cut at its ends', async () => {
    const a = region('anon');
    // From the middle of the anonymous region to well past its end.
    const start = a.start + BigInt(Math.floor(a.pages / 2) * 4096);
    const end = a.start + BigInt(a.pages * 4096) + (1n << 20n);
    const chunks = [];
    for await (const c of walk(fx.pid, { start, end, copy: true })) chunks.push(c);
    expect(chunks[0].address).toBe(start);
    for (const c of chunks) {
      expect(c.address).toBeGreaterThanOrEqual(start);
      expect(c.address + BigInt(c.pages * 4096)).toBeLessThanOrEqual(end);
      expect(c.address).toBeGreaterThanOrEqual(c.mapping.start);
      expect(c.address + BigInt(c.pages * 4096)).toBeLessThanOrEqual(c.mapping.end);
    }
    const first = chunks[0].entries as BigUint64Array;
    expect(first[0]).toBe(readPagemapPlain(fx.pid, start, 1)[0]);
    const sync = [...walkSync(fx.pid, { start, end })].map((c) => `${c.address}:${c.pages}`);
    expect(sync).toEqual(chunks.map((c) => `${c.address}:${c.pages}`));
    expect([...walkSync(fx.pid, { start: 4096, end: 8192 })]).toEqual([]); // nothing mapped there
    expect(() => walkSync(fx.pid, { start: 8192, end: 4096 }).next()).toThrow(RangeError);
    expect(() => walkSync(fx.pid, { start: 100 }).next()).toThrow(RangeError);
  });

  it('walkSync() yields the same chunks as walk()', async () => {
    const a: string[] = [];
    for await (const c of walk(fx.pid, { copy: true }))
      a.push(`${c.address}:${c.pages}:${c.entries ? countStates(c.entries).present : 'x'}`);
    const b: string[] = [];
    for (const c of walkSync(fx.pid))
      b.push(`${c.address}:${c.pages}:${c.entries ? countStates(c.entries).present : 'x'}`);
    expect(b).toEqual(a);
  });

  it('reading ahead, walk() hands out every chunk as walkSync() reads it, entries included, at any chunk size', async () => {
    // Read ahead into buffers reused in turn, a chunk's entries must still
    // be its own when the caller looks at them, after awaiting something
    // else: compare each chunk's first and last entries (PFNs included) and
    // its counts with walkSync()'s.
    const digest = (c: { address: bigint; pages: number; entries: BigUint64Array | null }) => {
      if (!c.entries) return `${c.address}:${c.pages}:empty`;
      const n = countStates(c.entries);
      return `${c.address}:${c.pages}:${c.entries[0]}:${c.entries[c.entries.length - 1]}:${n.present}:${n.swapped}`;
    };
    for (const chunkPages of [7, 100, 65536]) {
      const viaAsync: string[] = [];
      for await (const c of walk(fx.pid, { chunkPages })) {
        // A caller that awaits something else first: the reads ahead land meanwhile.
        await new Promise((r) => setImmediate(r));
        viaAsync.push(digest(c));
      }
      const viaSync: string[] = [];
      for (const c of walkSync(fx.pid, { chunkPages })) viaSync.push(digest(c));
      expect(viaAsync).toEqual(viaSync);
      expect(viaAsync.some((d) => d.endsWith(':empty'))).toBe(true);
    }
  });

  it('walk() left early lets its reads ahead finish and closes its handle', async () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 20; i++) {
      for await (const c of walk(fx.pid, { chunkPages: 16 })) if (c.entries) break;
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before);
  });

  it("transferring a chunk's buffer away leaves walk() going on: it reads into the addon's memory", async () => {
    // walk()'s reused buffers are the addon's memory (external ArrayBuffers),
    // read into on the pool thread; a transfer must not take that memory
    // from under a read in flight. Node 20 clones such a buffer, 22 and 24
    // refuse to transfer it. A plain buffer, transferred, would end the
    // walk with a TypeError at its reuse.
    const seen: string[] = [];
    for await (const c of walk(fx.pid, { chunkPages: 16 })) {
      if (c.entries) {
        const first = c.entries[0];
        try {
          const buffer = c.entries.buffer as ArrayBuffer;
          const moved = structuredClone(buffer, { transfer: [buffer] });
          expect(new BigUint64Array(moved, c.entries.byteOffset, 1)[0]).toBe(first);
        } catch (err) {
          expect((err as Error).name).toBe('DataCloneError');
        }
      }
      await new Promise((r) => setImmediate(r));
      seen.push(`${c.address}:${c.pages}`);
    }
    const sync: string[] = [];
    for (const c of walkSync(fx.pid, { chunkPages: 16 })) sync.push(`${c.address}:${c.pages}`);
    expect(seen).toEqual(sync);
  });

  it('ArrayBuffer.prototype.transfer() of a chunk (Node 22+) ends the walk with a TypeError, nothing worse', async () => {
    type Movable = ArrayBuffer & { transfer?: () => ArrayBuffer };
    const probe = new ArrayBuffer(8) as Movable;
    if (typeof probe.transfer !== 'function') return; // Node 20
    const taken: ArrayBuffer[] = [];
    const run = async () => {
      for await (const c of walk(fx.pid, { chunkPages: 16 })) {
        if (c.entries) taken.push((c.entries.buffer as Movable).transfer?.() as ArrayBuffer);
        await new Promise((r) => setImmediate(r));
      }
    };
    await expect(run()).rejects.toThrow(TypeError);
    expect(taken.length).toBeGreaterThan(0);
  });

  it('small neighbouring mappings read in one pread: every chunk holds what a plain pread reads there', async () => {
    // Runs of small mappings (libraries, the stack's neighbours, the
    // guard region) are read in one pread and handed out as views, one
    // chunk per mapping part as before; with `copy`, as arrays of their own.
    // Flag bits are compared: the fixture is stopped, but KSM may move a
    // page's frame.
    const flags = (e: BigUint64Array) => Array.from(e, (x) => x & PM_FLAG_MASK);
    for (const chunkPages of [16, 65536]) {
      for (const copy of [false, true]) {
        const chunks: { address: bigint; pages: number; entries: BigUint64Array }[] = [];
        let sharedWithPrevious = 0;
        let previous: { mappingIndex: number; entries: BigUint64Array | null } | undefined;
        for await (const c of walk(fx.pid, { chunkPages, copy })) {
          if (c.entries) {
            expect(c.entries.length).toBe(c.pages);
            chunks.push({ address: c.address, pages: c.pages, entries: copy ? c.entries : c.entries.slice() });
            if (previous?.entries && previous.mappingIndex !== c.mappingIndex) {
              if (previous.entries.buffer === c.entries.buffer) sharedWithPrevious++;
            }
          }
          previous = c;
        }
        for (const c of chunks) expect(flags(c.entries)).toEqual(flags(readPagemapPlain(fx.pid, c.address, c.pages)));
        if (copy) expect(sharedWithPrevious).toBe(0);
        else expect(sharedWithPrevious).toBeGreaterThan(0);
        const sync = [...walkSync(fx.pid, { chunkPages, copy })].map((c) => `${c.address}:${c.pages}`);
        const all: string[] = [];
        for await (const c of walk(fx.pid, { chunkPages, copy })) all.push(`${c.address}:${c.pages}`);
        expect(all).toEqual(sync);
      }
    }
  });

  it('a walk that ended lends its buffers to the next; one stopped early keeps the chunk its caller holds', async () => {
    // Fresh 512 KiB buffers cost milliseconds of page faults, so walks keep
    // theirs for the next walk, but only once their caller asked past the
    // last chunk: a caller that broke off may still be reading its chunk.
    // 16-page chunks: every read fills one of the walk's reused buffers.
    const buffersOf = async (pid: number) => {
      const seen = new Set<ArrayBufferLike>();
      for await (const c of walk(pid, { chunkPages: 16 })) if (c.entries) seen.add(c.entries.buffer);
      return seen;
    };
    const first = await buffersOf(fx.pid);
    const second = await buffersOf(fx.pid);
    expect([...second].some((b) => first.has(b))).toBe(true);
    const syncBuffer = () => {
      let b: ArrayBufferLike | undefined;
      for (const c of walkSync(fx.pid)) if (c.entries) b = c.entries.buffer;
      return b;
    };
    expect(syncBuffer()).toBe(syncBuffer());

    // Held after a break: later walks of another process (other entries)
    // must leave it alone, async and sync alike.
    // (The anonymous region may have merged with a neighbour: the chunk
    // that holds its first page. 16-page chunks: a reused buffer's.)
    const anon = region('anon').start;
    const holds = (c: { address: bigint; pages: number; entries: BigUint64Array | null }) =>
      c.entries !== null && c.address <= anon && anon < c.address + BigInt(c.pages * 4096);
    let held: BigUint64Array | undefined;
    for await (const c of walk(fx.pid, { chunkPages: 16 })) {
      if (holds(c)) {
        held = c.entries as BigUint64Array;
        break;
      }
    }
    let heldSync: BigUint64Array | undefined;
    for (const c of walkSync(fx.pid, { chunkPages: 16 })) {
      if (holds(c)) {
        heldSync = c.entries as BigUint64Array;
        break;
      }
    }
    const before = Array.from(held as BigUint64Array);
    const beforeSync = Array.from(heldSync as BigUint64Array);
    for (let i = 0; i < 3; i++) {
      for await (const c of walk(process.pid, { chunkPages: 16 })) void c;
      for (const c of walkSync(process.pid, { chunkPages: 16 })) void c;
    }
    expect(Array.from(held as BigUint64Array)).toEqual(before);
    expect(Array.from(heldSync as BigUint64Array)).toEqual(beforeSync);
  });

  it('two walks at once, reading ahead on two pool threads each, hand out their own chunks in order', async () => {
    // Flag bits and counts, digested as each chunk comes (the entries are
    // reused after): KSM may move a page's frame.
    const line = (c: { address: bigint; pages: number; entries: BigUint64Array | null }) =>
      `${c.address}:${c.pages}:${c.entries ? `${c.entries[0] & PM_FLAG_MASK}:${countStates(c.entries).present}` : 'x'}`;
    const digest = async (pid: number, chunkPages: number) => {
      const out: string[] = [];
      for await (const c of walk(pid, { chunkPages })) {
        // The other walk goes on meanwhile.
        await new Promise((r) => setImmediate(r));
        out.push(line(c));
      }
      return out;
    };
    const syncDigest = (pid: number, chunkPages: number) => Array.from(walkSync(pid, { chunkPages }), line);
    for (const chunkPages of [16, 65536]) {
      const [a, b] = await Promise.all([digest(fx.pid, chunkPages), digest(fx.pid, chunkPages)]);
      expect(a).toEqual(syncDigest(fx.pid, chunkPages));
      expect(b).toEqual(a);
    }
  });

  it('a target killed mid-walk: walk() rejects with ESRCH, code, errno, syscall and path, and closes both its handles', async () => {
    const target = await startFixture(['anon'], { FIXTURE_ANON_PAGES: '4096' });
    const fds = fs.readdirSync('/proc/self/fd').length;
    let chunks = 0;
    const run = async () => {
      // 16-page chunks: every read is a full one, and they alternate
      // between the walk's two handles.
      for await (const c of walk(target.pid, { chunkPages: 16 })) {
        if (++chunks === 3) await target.kill();
        void c;
      }
    };
    await expect(run()).rejects.toMatchObject({
      code: 'ESRCH',
      errno: -3,
      syscall: 'read',
      path: `/proc/${target.pid}/pagemap`,
    });
    expect(chunks).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fds);
  });

  it('still covers everything with PAGEMAP_SCAN switched off', () => {
    process.env.PAGEWALK_DISABLE_SCAN = '1';
    try {
      let pages = 0;
      for (const c of walkSync(fx.pid)) pages += c.pages;
      const total = readMaps(fx.pid)
        .filter((m) => m.start < 1n << 63n)
        .reduce((s, m) => s + m.size / 4096, 0);
      expect(pages).toBe(total);
      const h = openPagemap(fx.pid);
      expect(h.scan(region('anon').start, region('anon').start + 4096n).supported).toBe(false);
      h.close();
    } finally {
      delete process.env.PAGEWALK_DISABLE_SCAN;
    }
  });
});

describe('PAGEMAP_SCAN categories', () => {
  it('scanCategories() is what the kernel takes: all from 6.15, all but GUARD on 6.7-6.14, none before', () => {
    const k = kernel();
    expect(scanCategories()).toBe(k.scanGuardCategory ? 0x1ff : k.pagemapScan ? 0xff : 0);
  });

  it('scan() by default reports the categories the kernel knows, GUARD where it knows it', (ctx) => {
    skipUnless(ctx, kernel().pagemapScan, `no PAGEMAP_SCAN (errno ${kernel().raw.pagemapScanErrno})`);
    const r = region('guard');
    const end = r.start + BigInt(r.pages * 4096);
    const h = openPagemap(fx.pid);
    try {
      const plain = h.scan(r.start, end);
      expect(plain.supported).toBe(true);
      expect(plain.regions.every((x) => (x.categories & ~scanCategories()) === 0)).toBe(true);
      // Guard markers are swap-type entries: the kernel reports them SWAPPED (and GUARD where it knows it).
      expect(plain.regions.reduce((a, x) => a + Number(x.end - x.start), 0)).toBe(16 * 4096);
      const guarded = plain.regions.filter((x) => x.guard).map((x) => [x.start - r.start, x.end - r.start]);
      if (kernel().scanGuardCategory && r.installed === 1) expect(guarded).toEqual([[4n * 4096n, 8n * 4096n]]);
      else expect(guarded).toEqual([]);
    } finally {
      h.close();
    }
  });

  it('a category the kernel does not know fails that scan with EINVAL, and PAGEMAP_SCAN stays supported', (ctx) => {
    skipUnless(ctx, kernel().pagemapScan, `no PAGEMAP_SCAN (errno ${kernel().raw.pagemapScanErrno})`);
    // Linux 6.7-6.14 answer EINVAL for GUARD, which used to read as "no
    // PAGEMAP_SCAN". scan() takes only ScanCategory bits, so the addon is
    // asked directly for one no kernel knows (bit 40).
    const r = region('anon');
    const raw = new native.PagemapHandle(fx.pid);
    try {
      const ask = (report: number) =>
        raw.scan(
          Number(r.start >> 12n),
          Number(r.start >> 12n) + 1,
          0,
          0,
          ScanCategory.PRESENT,
          report,
          0,
          new BigUint64Array(3),
          new Float64Array(1),
        );
      expect(ask(ScanCategory.PRESENT)).toBe(1);
      expect(() => ask(2 ** 40)).toThrow(
        expect.objectContaining({ code: 'EINVAL', errno: -22, syscall: 'ioctl', path: `/proc/${fx.pid}/pagemap` }),
      );
      expect(() => ask(2 ** 40)).toThrow(/categories 0x10000000000 unknown to this kernel/);
      expect(ask(ScanCategory.PRESENT)).toBe(1);
    } finally {
      raw.close();
    }
    // Where the kernel lacks GUARD, scan() asking for it fails the same way.
    const h = openPagemap(fx.pid);
    try {
      const guard = () => h.scan(r.start, r.start + 4096n, { report: ScanCategory.GUARD });
      if (kernel().scanGuardCategory) expect(guard().supported).toBe(true);
      else expect(guard).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'ioctl' }));
      expect(h.scan(r.start, r.start + 4096n).supported).toBe(true);
    } finally {
      h.close();
    }
  });
});

describe('errors', () => {
  it('a missing process is ENOENT with Node-style fields', () => {
    try {
      openPagemap(4_000_000);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: '/proc/4000000/pagemap', errno: -2 });
    }
  });

  it('a process that exits after the open reads as ESRCH, never as empty memory', async () => {
    const f = await startFixture(['anon']);
    const h = openPagemap(f.pid);
    await f.kill();
    expect(() => h.read(f.regions.anon.start, 64)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'read' }));
    await expect(h.readAsync(f.regions.anon.start, 64)).rejects.toMatchObject({ code: 'ESRCH' });
    h.close();
  });

  it('a read past the end of user space throws a RangeError naming it', async () => {
    const h = openPagemap(fx.pid);
    expect(() => h.read(1n << 47n, 16)).toThrow(RangeError);
    expect(() => h.read(1n << 47n, 16)).toThrow(/end of user space \(0x7ffffffff000\)/);
    await expect(h.readAsync(1n << 47n, 16)).rejects.toThrow(/end of user space \(0x7ffffffff000\)/);
    h.close();
  });

  it('a closed handle refuses reads with EBADF', () => {
    const h = openPagemap(fx.pid);
    h.close();
    expect(h.closed).toBe(true);
    expect(() => h.read(0, 1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
