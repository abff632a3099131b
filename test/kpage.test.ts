import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  decodeKpageFlags,
  extractPfns,
  KPF,
  type KpageInfo,
  lookupKpages,
  lookupKpagesAsync,
  openPagemap,
  pageFeatures,
  processMemory,
} from '../lib/index';
import { type Fixture, killAllFixtures, startFixture } from './helpers/fixture';
import { kernel } from './helpers/kernel';
import { inKb, kernelKb, readKpage } from './helpers/oracle';

let fx: Fixture;
beforeAll(async () => {
  // Isolated (see privateLayouts()): compared with smaps_rollup read at another moment.
  fx = await startFixture(['anon', 'zero', 'uffdZero', 'shared', 'file'], {}, { isolated: true });
  fx.stop();
});
afterAll(killAllFixtures);

function pfnsOf(names: string[]): BigUint64Array {
  const h = openPagemap(fx.pid);
  const all: bigint[] = [];
  for (const n of names) all.push(...extractPfns(h.read(fx.regions[n].start, fx.regions[n].pages)).pfns);
  h.close();
  return BigUint64Array.from(all);
}

it('lookupKpages agrees with one plain read per PFN, repeats and order kept', async () => {
  const pfns = pfnsOf(['anon', 'zero', 'uffdZero', 'shared', 'file']);
  const shuffled = BigUint64Array.from([...pfns].reverse().concat([...pfns].slice(0, 5)));
  const same = (a: KpageInfo, b: KpageInfo) =>
    a.mapcount.every((v, i) => v === b.mapcount[i]) && a.flags.every((v, i) => v === b.flags[i]);
  let sync = lookupKpages(shuffled);
  let asyncResult = await lookupKpagesAsync(shuffled);
  for (let i = 0; i < 10 && !same(sync, asyncResult); i++) {
    sync = lookupKpages(shuffled);
    asyncResult = await lookupKpagesAsync(shuffled);
  }
  expect([...asyncResult.mapcount]).toEqual([...sync.mapcount]);
  expect([...asyncResult.flags]).toEqual([...sync.flags]);
  // LRU, ACTIVE and REFERENCED move while the kernel ages or isolates a
  // page, even in a stopped process: compare both readers at one moment,
  // again until a pass finds them equal.
  const plain = () => ({
    mapcount: [...shuffled].map((pfn) => Number(readKpage('kpagecount', pfn))),
    flags: [...shuffled].map((pfn) => Number(readKpage('kpageflags', pfn) & 0xffffffffn)),
  });
  let ours = lookupKpages(shuffled);
  let theirs = plain();
  for (
    let i = 0;
    i < 10 &&
    JSON.stringify({ m: [...ours.mapcount], f: [...ours.flags] }) !==
      JSON.stringify({ m: theirs.mapcount, f: theirs.flags });
    i++
  ) {
    ours = lookupKpages(shuffled);
    theirs = plain();
  }
  expect([...ours.mapcount]).toEqual(theirs.mapcount);
  expect([...ours.flags]).toEqual(theirs.flags);
});

it('classifies the fixture pages: anonymous, zero page, shared memory, file cache', () => {
  const flagsOf = (name: string) => decodeKpageFlags(lookupKpages(pfnsOf([name])).flags[0]);
  expect(flagsOf('anon')).toContain('ANON');
  // Pages only read: the zero page, or anonymous pages of their own, as the probe found.
  expect(kernel().readFault).not.toBe('mixed');
  if (kernel().readFault === 'zero page') {
    expect(flagsOf('zero')).toContain('ZERO_PAGE');
  } else {
    expect(flagsOf('zero')).toContain('ANON');
    expect(flagsOf('zero')).not.toContain('ZERO_PAGE');
  }
  if (kernel().uffdZeroPage) expect(flagsOf('uffdZero')).toContain('ZERO_PAGE');
  else
    console.log(
      `not checked on ${kernel().release}: the zero page by UFFDIO_ZEROPAGE (errno ${kernel().raw.uffdZeroPageErrno})`,
    );
  expect(flagsOf('shared')).toEqual(expect.arrayContaining(['SWAPBACKED']));
  expect(flagsOf('shared')).not.toContain('ANON');
  expect(flagsOf('file')).not.toContain('ANON');
  expect(KPF.NOPAGE).toBe(20);
});

it('frames beyond RAM read as NOPAGE with count 0', () => {
  const r = lookupKpages(BigUint64Array.from([1n << 40n]));
  expect(r.mapcount[0]).toBe(0);
  expect(decodeKpageFlags(r.flags[0])).toEqual(['NOPAGE']);
  expect(() => lookupKpages([1n] as unknown as BigUint64Array)).toThrow(TypeError);
});

/** The first PFN kpageflags has no entry for (max_pfn), by binary search. */
function maxPfn(): number {
  const fd = fs.openSync('/proc/kpageflags', 'r');
  const buf = Buffer.alloc(8);
  let lo = 0;
  let hi = 2 ** 40;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fs.readSync(fd, buf, 0, 8, mid * 8) === 8) lo = mid;
    else hi = mid;
  }
  fs.closeSync(fd);
  return hi;
}

it('reads kpageflags only where pagemap and the mapping do not decide the kind (shared memory, anonymous)', async () => {
  const features = pageFeatures();
  // With hugetlb pages on the machine every frame's flags are read.
  if (features.hugetlbInUse) return;
  // The real kpagecount, and a kpageflags whose every entry reads 0: a
  // frame whose flags are read looks like page cache (neither ANON nor
  // SWAPBACKED), so any figure that needs them comes out wrong.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-kpage-'));
  fs.symlinkSync('/proc/kpagecount', path.join(dir, 'kpagecount'));
  fs.closeSync(fs.openSync(path.join(dir, 'kpageflags'), 'w'));
  fs.truncateSync(path.join(dir, 'kpageflags'), maxPfn() * 8);
  process.env.PAGEWALK_KPAGE_DIR = dir;
  try {
    const skipping = inKb(await processMemory(fx.pid));
    const theirs = kernelKb(fx.pid);
    expect(theirs.Pss_Shmem).toBeGreaterThan(0);
    expect(skipping.Pss_Shmem).toBe(theirs.Pss_Shmem);
    expect(skipping.Pss).toBe(theirs.Pss);
    if (!features.ksmActive) expect(skipping.Pss_Anon).toBe(theirs.Pss_Anon);
    // The same reader made to read every frame's flags gets them wrong.
    process.env.PAGEWALK_ALL_KPAGEFLAGS = '1';
    const reading = inKb(await processMemory(fx.pid));
    expect(reading.Pss_Shmem).toBe(0);
  } finally {
    delete process.env.PAGEWALK_KPAGE_DIR;
    delete process.env.PAGEWALK_ALL_KPAGEFLAGS;
    fs.rmSync(dir, { recursive: true });
  }
});

it('a few frames looked up alone and among 40,000 others read the same (sorted list and bitmaps)', () => {
  // Up to a few thousand wanted frames are kept in a sorted list, more in
  // bitmaps over every frame of the machine: the fixture's frames go
  // through one, then the other.
  const pfns = pfnsOf(['anon', 'zero', 'uffdZero', 'shared', 'file']);
  const step = BigInt(Math.max(1, Math.floor(maxPfn() / 40_000)));
  const many = new BigUint64Array(pfns.length + 40_000);
  many.set(pfns);
  for (let i = 0; i < 40_000; i++) many[pfns.length + i] = BigInt(i) * step;
  const head = (r: KpageInfo) => ({
    m: [...r.mapcount.slice(0, pfns.length)],
    f: [...r.flags.slice(0, pfns.length)],
  });
  // LRU and REFERENCED bits move even in a stopped process: compare two
  // reads at one moment, again until a pass finds them equal.
  let alone = head(lookupKpages(pfns));
  let among = head(lookupKpages(many));
  for (let i = 0; i < 10 && JSON.stringify(alone) !== JSON.stringify(among); i++) {
    alone = head(lookupKpages(pfns));
    among = head(lookupKpages(many));
  }
  expect(pfns.length).toBeGreaterThan(0);
  expect(alone.m.some((c) => c > 0)).toBe(true);
  expect(among).toEqual(alone);
});
