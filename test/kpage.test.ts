import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  decodeKpageFlags,
  extractPfns,
  KPF,
  type KpageInfo,
  lookupKpages,
  lookupKpagesAsync,
  openPagemap,
} from '../lib/index';
import { type Fixture, killAllFixtures, startFixture } from './helpers/fixture';
import { readKpage } from './helpers/oracle';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture(['anon', 'zero', 'shared', 'file']);
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
  const pfns = pfnsOf(['anon', 'zero', 'shared', 'file']);
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
  expect(flagsOf('zero')).toContain('ZERO_PAGE');
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
