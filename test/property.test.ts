// Property tests: the decoders against pure-JS references on random input,
// the maps/smaps parsers against the kernel's own line format, and the PSS
// fixed point against a BigInt sum over plain reads of pagemap and kpagecount.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countStates,
  decodeEntry,
  encodeEntry,
  extractPfns,
  type Mapping,
  PM_FLAG_MASK,
  parseMaps,
  parseMapsLine,
  parseSmaps,
  processMemory,
  pssBytes,
  readMaps,
  runLengths,
} from '../lib/index';
import { type Fixture, killAllFixtures, startFixture } from './helpers/fixture';
import { readKpage, readPagemapPlain, rollup } from './helpers/oracle';
import { killAllProcs, startChurn } from './helpers/procs';

const U64 = (1n << 64n) - 1n;
const u64 = fc.bigInt({ min: 0n, max: U64 });

// Entries with realistic states (so that runs form) mixed with arbitrary bits.
const flagCombos = [
  0n,
  1n << 63n,
  (1n << 63n) | (1n << 56n),
  (1n << 63n) | (1n << 61n),
  1n << 62n,
  (1n << 62n) | (1n << 58n),
  1n << 55n,
];
const entry = fc.oneof(
  u64,
  fc.tuple(fc.constantFrom(...flagCombos), fc.bigInt({ min: 0n, max: (1n << 55n) - 1n })).map(([f, pfn]) => f | pfn),
  fc.constantFrom(...flagCombos),
);
const entries = fc.array(entry, { maxLength: 400 }).map((a) => BigUint64Array.from(a));

describe('decodeEntry / encodeEntry', () => {
  it('round-trip every bit of any 64-bit value', () => {
    fc.assert(
      fc.property(u64, (e) => {
        expect(encodeEntry(decodeEntry(e))).toBe(e);
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trip every single bit and all-ones', () => {
    for (let b = 0n; b < 64n; b++) expect(encodeEntry(decodeEntry(1n << b))).toBe(1n << b);
    expect(encodeEntry(decodeEntry(U64))).toBe(U64);
  });

  it('decode the documented fields exactly', () => {
    fc.assert(
      fc.property(u64, (e) => {
        const d = decodeEntry(e);
        const bit = (n: bigint) => ((e >> n) & 1n) === 1n;
        expect([d.present, d.swapped, d.file, d.exclusive, d.softDirty, d.uffdWp, d.guard]).toEqual([
          bit(63n),
          bit(62n),
          bit(61n),
          bit(56n),
          bit(55n),
          bit(57n),
          bit(58n),
        ]);
        const low = e & ((1n << 55n) - 1n);
        expect(d.pfn).toBe(bit(63n) ? low : null);
        expect(d.swapType).toBe(bit(62n) ? Number(low & 31n) : null);
        expect(d.swapOffset).toBe(bit(62n) ? low >> 5n : null);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bulk decoders agree with pure-JS references', () => {
  const present = (e: bigint) => (e >> 63n) & 1n;
  it('countStates over any slice', () => {
    fc.assert(
      fc.property(
        entries.chain((a) => fc.tuple(fc.constant(a), fc.nat(a.length), fc.nat(a.length))),
        ([a, x, y]) => {
          const [s, t] = x <= y ? [x, y] : [y, x];
          const c = countStates(a, s, t);
          const slice = [...a.subarray(s, t)];
          const n = (f: (e: bigint) => boolean) => slice.filter(f).length;
          const bit = (e: bigint, b: bigint) => ((e >> b) & 1n) === 1n;
          const p = n((e) => bit(e, 63n));
          const withPfn = n((e) => bit(e, 63n) && (e & ((1n << 55n) - 1n)) !== 0n);
          expect(c).toEqual({
            pages: t - s,
            present: p,
            swapped: n((e) => bit(e, 62n)),
            notPresent: n((e) => !bit(e, 63n) && !bit(e, 62n)),
            file: n((e) => bit(e, 61n)),
            exclusive: n((e) => bit(e, 56n)),
            softDirty: n((e) => bit(e, 55n)),
            uffdWp: n((e) => bit(e, 57n)),
            guard: n((e) => bit(e, 58n)),
            presentWithPfn: withPfn,
            pfnsVisible: p === 0 || withPfn > 0,
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('runLengths under any mask', () => {
    fc.assert(
      fc.property(entries, fc.oneof(fc.constant(PM_FLAG_MASK), u64), (a, mask) => {
        const r = runLengths(a, mask);
        const ref: bigint[] = [];
        for (let i = 0; i < a.length; ) {
          let j = i + 1;
          while (j < a.length && (a[j] & mask) === (a[i] & mask)) j++;
          ref.push(BigInt(i), BigInt(j - i), a[i] & mask);
          i = j;
        }
        expect(r.count).toBe(ref.length / 3);
        expect([...r.triples]).toEqual(ref);
      }),
      { numRuns: 500 },
    );
  });

  it('extractPfns, with room for all or only some', () => {
    fc.assert(
      fc.property(entries, fc.nat(400), (a, room) => {
        const ref = [...a].filter((e) => present(e)).map((e) => e & ((1n << 55n) - 1n));
        const all = extractPfns(a);
        expect([...all.pfns]).toEqual(ref);
        expect(all.present).toBe(ref.length);
        const some = extractPfns(a, new BigUint64Array(room));
        expect(some.present).toBe(ref.length);
        expect([...some.pfns]).toEqual(ref.slice(0, room));
      }),
      { numRuns: 500 },
    );
  });
});

// ------------------------------------------------------------ maps and smaps

/** A line as fs/proc/task_mmu.c prints it: header, padded to column 73, then the name. */
function formatMapsLine(m: Mapping): string {
  const hex = (v: bigint, w: number) => v.toString(16).padStart(w, '0');
  const head =
    `${hex(m.start, 8)}-${hex(m.end, 8)} ${m.perms} ${hex(m.offset, 8)} ` +
    `${m.deviceMajor.toString(16).padStart(2, '0')}:${m.deviceMinor.toString(16).padStart(2, '0')} ${m.inode} `;
  return m.path === '' ? head : `${head.padEnd(72, ' ')} ${m.path}`;
}

const pathChar = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  fc.constantFrom(' ', '  ', '\r', '\u2028', '\u2029', '\t', '(deleted)', 'é', '😀', '\0', ':', '-', '[x]', '\\012'),
);
const filePath = fc
  .tuple(fc.array(pathChar, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.constantFrom('', ' ', '   '))
  .map(
    ([parts, deleted, trailing]) =>
      `/${parts.join('').replace(/\n/g, '\\012')}${trailing}${deleted ? ' (deleted)' : ''}`,
  );
const mapPath = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '[heap]',
    '[stack]',
    '[vdso]',
    '[vvar]',
    '[anon:my name]',
    '[anon_shmem:x]',
    '/dev/zero (deleted)',
    '/SYSV00000000 (deleted)',
    '/memfd:a b (deleted)',
  ),
  filePath,
);

const mapping = fc
  .record({
    startPage: fc.bigInt({ min: 0n, max: (1n << 52n) - 2n }),
    pages: fc.bigInt({ min: 1n, max: 1n << 30n }),
    perms: fc.tuple(
      fc.constantFrom('r', '-'),
      fc.constantFrom('w', '-'),
      fc.constantFrom('x', '-'),
      fc.constantFrom('p', 's'),
    ),
    offset: fc.bigInt({ min: 0n, max: U64 }),
    major: fc.nat(4095),
    minor: fc.nat(1 << 20),
    inode: fc.bigInt({ min: 0n, max: U64 }),
    path: mapPath,
  })
  .map((r): Mapping => {
    const start = r.startPage << 12n;
    let end = start + (r.pages << 12n);
    if (end > 1n << 64n) end = 1n << 64n;
    if (end === 1n << 64n) end -= 4096n;
    const safeEnd = end > start ? end : start + 4096n;
    const perms = r.perms.join('');
    return {
      start,
      end: safeEnd,
      size: Number(safeEnd - start),
      perms,
      read: perms[0] === 'r',
      write: perms[1] === 'w',
      execute: perms[2] === 'x',
      shared: perms[3] === 's',
      offset: r.offset,
      deviceMajor: r.major,
      deviceMinor: r.minor,
      inode: r.inode,
      path: r.path,
      deleted: r.path.endsWith(' (deleted)'),
    };
  });

describe('maps and smaps parsers', () => {
  it('round-trip generated maps lines: odd paths, huge addresses, [vsyscall]', () => {
    fc.assert(
      fc.property(mapping, (m) => {
        expect(parseMapsLine(formatMapsLine(m))).toEqual(m);
      }),
      { numRuns: 3000 },
    );
    const vsyscall = parseMapsLine(
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
    );
    expect(formatMapsLine(vsyscall)).toBe(
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
    );
  });

  it('round-trip whole maps files and smaps files with fields and VmFlags', () => {
    const fieldNames = [
      'Size',
      'Rss',
      'Pss',
      'Pss_Dirty',
      'Shared_Clean',
      'Private_Dirty',
      'Swap',
      'SwapPss',
      'Locked',
    ];
    const entryArb = fc.record({
      m: mapping,
      values: fc.array(fc.nat(1 << 30), { minLength: fieldNames.length, maxLength: fieldNames.length }),
      thp: fc.nat(1),
      flags: fc.subarray(['rd', 'wr', 'ex', 'mr', 'mw', 'me', 'ac', 'sd', 'ht', 'hg']),
    });
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 12 }), (list) => {
        const maps = `${list.map((e) => formatMapsLine(e.m)).join('\n')}\n`;
        expect(parseMaps(maps)).toEqual(list.map((e) => e.m));
        const smaps = list
          .map((e) =>
            [
              formatMapsLine(e.m),
              ...fieldNames.map((f, i) => `${`${f}:`.padEnd(16)}${String(e.values[i]).padStart(8)} kB`),
              `THPeligible:    ${e.thp}`,
              `VmFlags: ${e.flags.map((f) => `${f} `).join('')}`,
            ].join('\n'),
          )
          .join('\n');
        const parsed = parseSmaps(`${smaps}\n`);
        expect(parsed.length).toBe(list.length);
        parsed.forEach((p, k) => {
          const { fields, vmFlags, ...m } = p;
          expect(m).toEqual(list[k].m);
          expect(vmFlags).toEqual(list[k].flags);
          const want: Record<string, number> = { THPeligible: list[k].thp };
          for (const [i, f] of fieldNames.entries()) want[f] = list[k].values[i];
          expect(fields).toEqual(want);
        });
      }),
      { numRuns: 300 },
    );
  });

  describe('a live process mapping a file with a hostile name', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-names-'));
    });
    afterAll(async () => {
      await killAllProcs();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it.each([
      ['carriage return', 'a\rb'],
      ['line separator', 'a\u2028b'],
      ['newline', 'a\nb'],
      ['spaces and unicode', ' spaced  名前 😀  '],
      ['deleted-looking', 'x (deleted)'],
    ])('%s: maps parse and the process is measured', async (_n, name) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.alloc(4 * 4096, 7));
      const p = await startChurn(['mapfile', file]);
      const m = readMaps(p.pid).find((x) => x.path.startsWith(dir));
      expect(m?.path).toBe(file.replace(/\n/g, '\\012'));
      const r = await processMemory(p.pid);
      expect(r.rss).toBeGreaterThan(0);
      fs.unlinkSync(file);
      const gone = readMaps(p.pid).find((x) => x.path.startsWith(dir));
      expect(gone?.deleted).toBe(true);
      await p.kill();
    });
  });
});

// ------------------------------------------------------------ PSS fixed point

describe('PSS fixed point', () => {
  let fx: Fixture;
  beforeAll(async () => {
    // Isolated (see privateLayouts()): compared to the byte with an oracle
    // read at other moments.
    fx = await startFixture(['all'], {}, { isolated: true });
    fx.stop();
  });
  afterAll(killAllFixtures);

  /** The kernel's sum, in BigInt, from plain reads of pagemap, kpagecount and kpageflags. */
  function oraclePss(pid: number): bigint {
    let sum = 0n;
    const full = 4096n << 12n;
    for (const m of readMaps(pid)) {
      if (m.start >= 1n << 63n) continue;
      for (const e of readPagemapPlain(pid, m.start, m.size / 4096)) {
        if (!((e >> 63n) & 1n)) continue;
        const pfn = e & ((1n << 55n) - 1n);
        const flags = readKpage('kpageflags', pfn);
        // Zero page, no struct page, hugetlb: not in Rss or Pss.
        if ((flags >> 24n) & 1n || (flags >> 20n) & 1n || (flags >> 17n) & 1n) continue;
        const count = readKpage('kpagecount', pfn);
        if (count === 0n) continue;
        sum += count < 2n ? full : full / count;
      }
    }
    return sum;
  }

  it('processMemory pssFixed equals the BigInt sum for every process of the fixture family', async () => {
    for (const pid of fx.pids) {
      // Shared library pages change mapcount as other processes come and
      // go: compare only across a window in which the oracle was stable.
      let r = await processMemory(pid);
      let want = oraclePss(pid);
      for (let attempt = 0; attempt < 20; attempt++) {
        const before = oraclePss(pid);
        r = await processMemory(pid);
        want = oraclePss(pid);
        if (before === want && rollup(pid).Pss === Number((want >> 12n) >> 10n)) break;
      }
      expect(r.pssFixed).toBe(want);
      expect(r.pss).toBe(Number(want >> 12n));
      expect(Math.floor(r.pss / 1024)).toBe(Number((want >> 12n) >> 10n));
      expect(Number((want >> 12n) >> 10n)).toBe(rollup(pid).Pss);
    }
  });

  it('pssBytes truncates like the kernel for any fixed-point sum of page shares', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 3000 }), (mapcounts) => {
        const full = 4096n << 12n;
        let fixed = 0n;
        for (const c of mapcounts) fixed += c < 2 ? full : full / BigInt(c);
        expect(BigInt(pssBytes(fixed))).toBe(fixed >> 12n);
      }),
      { numRuns: 300 },
    );
  });
});
