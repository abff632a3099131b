import { afterAll, describe, expect, it } from 'vitest';
import {
  parseMaps,
  parseMapsLine,
  parseSmaps,
  parseSmapsRollup,
  readMaps,
  readMapsAsync,
  readSmaps,
  readSmapsRollup,
} from '../lib/index';
import { native } from '../lib/native';
import { readSmapsAsync } from '../lib/proc/smaps';
import { killAllFixtures, startFixture } from './helpers/fixture';
import { kernel } from './helpers/kernel';
import { freePid } from './helpers/procs';

describe('maps lines', () => {
  it('parses every field of an ordinary file mapping', () => {
    const m = parseMapsLine(
      '7f3c1a200000-7f3c1a228000 r--p 00001000 fd:01 1835044                    /usr/lib/x86_64-linux-gnu/libc.so.6',
    );
    expect(m).toMatchObject({
      start: 0x7f3c1a200000n,
      end: 0x7f3c1a228000n,
      size: 0x28000,
      perms: 'r--p',
      read: true,
      write: false,
      execute: false,
      shared: false,
      offset: 0x1000n,
      deviceMajor: 0xfd,
      deviceMinor: 1,
      inode: 1835044n,
      path: '/usr/lib/x86_64-linux-gnu/libc.so.6',
      deleted: false,
    });
  });

  it('keeps [vsyscall] above 2^53 exact', () => {
    const m = parseMapsLine('ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]');
    expect(m.start).toBe(0xffffffffff600000n);
    expect(m.end - m.start).toBe(4096n);
    expect(m.size).toBe(4096);
    expect(m.path).toBe('[vsyscall]');
  });

  it('takes anonymous mappings without a path', () => {
    const m = parseMapsLine('7ffd5e9f2000-7ffd5ea13000 rw-p 00000000 00:00 0 ');
    expect(m.path).toBe('');
    const bare = parseMapsLine('55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0');
    expect(bare.path).toBe('');
  });

  it('keeps spaces inside paths and marks deleted files', () => {
    const m = parseMapsLine(
      '7f0000000000-7f0000001000 rw-s 00000000 00:05 42                         /dev/shm/my file  (deleted)',
    );
    expect(m.path).toBe('/dev/shm/my file  (deleted)');
    expect(m.deleted).toBe(true);
    expect(m.shared).toBe(true);
    const z = parseMapsLine(
      '7f0000000000-7f0000001000 rw-s 00000000 00:01 1025                       /dev/zero (deleted)',
    );
    expect(z.deleted).toBe(true);
    expect(z.deviceMajor).toBe(0);
  });

  it('parses the pseudo paths', () => {
    for (const p of ['[heap]', '[stack]', '[vdso]', '[vvar]', '[vvar_vclock]', '[anon:name]', '[anon_shmem:x]']) {
      expect(parseMapsLine(`5600000000-5600001000 rw-p 00000000 00:00 0 ${p}`).path).toBe(p);
    }
  });

  it('rejects malformed lines with SyntaxError', () => {
    expect(() => parseMapsLine('not a maps line')).toThrow(SyntaxError);
    expect(() => parseMapsLine('1000-2000 rwzp 00000000 00:00 0')).toThrow(SyntaxError);
  });

  it('reads this process', () => {
    const maps = readMaps(process.pid);
    expect(maps.some((m) => m.path === '[stack]')).toBe(true);
    expect(parseMaps('')).toEqual([]);
  });
});

describe("the addon's maps reader (the walks' hot path)", () => {
  afterAll(killAllFixtures);

  /** readMaps() in the addon's layout: user space only; shmemOnly keeps device major 0 with an inode. */
  function expected(pid: number, shmemOnly: boolean): number[][] {
    return readMaps(pid)
      .filter((m) => m.start < 1n << 63n)
      .filter((m) => !shmemOnly || (m.deviceMajor === 0 && m.inode !== 0n))
      .map((m) => [
        Number(m.start >> 12n),
        Number(m.end >> 12n),
        Number(m.offset >> 12n),
        m.deviceMajor,
        m.deviceMinor,
        Number(m.inode >> 32n),
        Number(m.inode & 0xffffffffn),
        (m.read ? 1 : 0) | (m.write ? 2 : 0) | (m.execute ? 4 : 0) | (m.shared ? 8 : 0),
      ]);
  }

  function records(data: Float64Array): number[][] {
    const out: number[][] = [];
    for (let i = 0; i < data.length; i += native.mapFields)
      out.push(Array.from(data.subarray(i, i + native.mapFields)));
    return out;
  }

  it('agrees with readMaps() field by field, by PROCMAP_QUERY and by parsing the text', async () => {
    // Without PROCMAP_QUERY (before 6.11) both readers parse the text.
    if (!kernel().procmapQuery)
      console.log(`PROCMAP_QUERY not checked on ${kernel().release} (errno ${kernel().raw.procmapQueryErrno})`);
    const fx = await startFixture(['all']);
    fx.stop();
    let shmemSeen = 0;
    for (const pid of fx.pids) {
      for (const shmemOnly of [false, true]) {
        const want = expected(pid, shmemOnly);
        expect(records(await native.readMappings(pid, shmemOnly, true))).toEqual(want);
        expect(records(await native.readMappings(pid, shmemOnly, false))).toEqual(want);
        if (shmemOnly) shmemSeen += want.length;
      }
    }
    // The fixture maps shared anonymous memory, memfd and SysV shm.
    expect(shmemSeen).toBeGreaterThan(0);
  });

  it('has no mappings for a kernel thread and throws ENOENT for a pid that does not exist', async () => {
    expect((await native.readMappings(2, false, true)).length).toBe(0);
    expect((await native.readMappings(2, true, true)).length).toBe(0);
    await expect(native.readMappings(0x3fffffff, true, true)).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'open',
      path: '/proc/1073741823/maps',
    });
  });
});

describe('the async readers (one job on the thread pool per file)', () => {
  it('read the whole file, many 4 KiB seq_file reads long, as the sync readers do', async () => {
    // A fixture that stays put: smaps of the fixture runs to tens of KiB,
    // which the kernel hands out about 4 KiB per read.
    const fx = await startFixture(['all']);
    try {
      fx.stop();
      const smaps = await readSmapsAsync(fx.pid);
      expect(smaps.length).toBeGreaterThan(20);
      expect(smaps).toEqual(readSmaps(fx.pid));
      expect(await readMapsAsync(fx.pid)).toEqual(readMaps(fx.pid));
    } finally {
      await fx.kill();
    }
  });

  it('reject with code, errno, syscall and path', async () => {
    const pid = freePid();
    await expect(readMapsAsync(pid)).rejects.toMatchObject({
      code: 'ENOENT',
      errno: -2,
      syscall: 'open',
      path: `/proc/${pid}/maps`,
      message: `ENOENT: no such file or directory, open '/proc/${pid}/maps'`,
    });
  });
});

const SMAPS = `7f0000000000-7f0000003000 rw-p 00000000 00:00 0 
Size:                 12 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   6 kB
Pss_Dirty:             6 kB
Shared_Clean:          0 kB
Shared_Dirty:          4 kB
Private_Clean:         0 kB
Private_Dirty:         4 kB
Referenced:            8 kB
Anonymous:             8 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  4 kB
SwapPss:               4 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd wr mr mw me ac sd
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
Rss:                   0 kB
VmFlags: ex
`;

describe('smaps', () => {
  it('parses every field and VmFlags', () => {
    const [a, v] = parseSmaps(SMAPS);
    expect(a.fields).toMatchObject({ Size: 12, Rss: 8, Pss: 6, Pss_Dirty: 6, Swap: 4, SwapPss: 4, THPeligible: 0 });
    expect(a.vmFlags).toEqual(['rd', 'wr', 'mr', 'mw', 'me', 'ac', 'sd']);
    expect(v.start).toBe(0xffffffffff600000n);
    expect(v.vmFlags).toEqual(['ex']);
  });

  it('parses smaps_rollup', () => {
    const r = parseSmapsRollup(`55d0c0a00000-7ffd5ea13000 ---p 00000000 00:00 0                          [rollup]
Rss:                4700 kB
Pss:                3236 kB
Pss_Anon:           2991 kB
Swap:                512 kB
`);
    expect(r).toEqual({
      start: 0x55d0c0a00000n,
      end: 0x7ffd5ea13000n,
      fields: { Rss: 4700, Pss: 3236, Pss_Anon: 2991, Swap: 512 },
    });
  });

  it('reads this process: smaps and rollup agree on Rss', () => {
    const entries = readSmaps(process.pid);
    const sum = entries.reduce((s, e) => s + (e.fields.Rss ?? 0), 0);
    const rollup = readSmapsRollup(process.pid);
    // A running process moves; the totals stay within a few MiB.
    expect(Math.abs(sum - rollup.fields.Rss)).toBeLessThan(16 * 1024);
  });

  it('throws SyntaxError on garbage', () => {
    expect(() => parseSmaps('garbage line')).toThrow(SyntaxError);
    expect(() => parseSmapsRollup('')).toThrow(SyntaxError);
  });
});
