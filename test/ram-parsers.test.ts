// The /proc parsers the RAM census reads through, on text: /proc/iomem,
// /proc/zoneinfo, /proc/sysvipc/shm, /proc/PID/mountinfo and memory.stat;
// and the census's arithmetic on made-up frame counts.
import { describe, expect, it } from 'vitest';
import { parseMemoryStat } from '../lib/memcg';
import { FrameClass, native } from '../lib/native';
import { parseKernelImage, parseSystemRam } from '../lib/proc/iomem';
import { parseMountinfo } from '../lib/proc/mountinfo';
import { parseSysvShm } from '../lib/proc/sysvipc';
import { parseZoneinfo } from '../lib/proc/zoneinfo';
import { buildCensus, type CensusInputs, type RamNode } from '../lib/ram';

describe('RAM census parsers', () => {
  it('parseSystemRam: whole pages of top-level System RAM, merged; nothing when addresses are hidden', () => {
    const text = [
      '00000000-00000fff : Reserved',
      '00001000-0009fbff : System RAM',
      '0009fc00-000fffff : Reserved',
      '00100000-bfffffff : System RAM',
      '  01000000-01ffffff : Kernel code',
      'eec00000-febfffff : PCI Bus 0000:00',
      '100000000-63fffffff : System RAM',
      '',
    ].join('\n');
    // 0x9fbff ends inside page 0x9f: only pages 1..0x9e are RAM.
    expect(parseSystemRam(text)).toEqual([
      { start: 1, end: 0x9f },
      { start: 0x100, end: 0xc0000 },
      { start: 0x100000, end: 0x640000 },
    ]);
    expect(parseSystemRam('00000000-00000000 : System RAM\n')).toEqual([]);
    expect(parseSystemRam('00001000-00001fff : System RAM\n00002000-00002fff : System RAM\n')).toEqual([
      { start: 1, end: 3 },
    ]);
  });

  it('parseZoneinfo: present, managed, free and the per-CPU lists summed over CPUs', () => {
    const text = `Node 0, zone   Normal
  pages free     370725
        boost    0
        spanned  5505024
        present  5505024
        managed  1376256
      nr_free_pages 370725
  pagesets
    cpu: 0
              count:    15148
              high:     15535
    cpu: 1
              count:    27414
              high:     27549
  node_unreclaimable:  0
  start_pfn:           1048576
Node 0, zone  Movable
  pages free     0
        spanned  0
        present  0
        managed  0
`;
    expect(parseZoneinfo(text)).toEqual([
      {
        node: 0,
        name: 'Normal',
        startPfn: 1048576,
        spanned: 5505024,
        present: 5505024,
        managed: 1376256,
        freePages: 370725,
        perCpuPages: 15148 + 27414,
      },
      { node: 0, name: 'Movable', startPfn: 0, spanned: 0, present: 0, managed: 0, freePages: 0, perCpuPages: 0 },
    ]);
  });

  it('parseSysvShm: key, id, size, attachments, resident and swapped bytes by column name', () => {
    const text = `       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
1879048192          3   600              16777216  4242  4242      0     0     0     0     0 1764669999 1764669999 1764669999              16777216                     0
`;
    expect(parseSysvShm(text)).toEqual([
      {
        key: 1879048192,
        shmid: 3,
        size: 16777216,
        attached: 0,
        creatorPid: 4242,
        lastPid: 4242,
        rss: 16777216,
        swap: 0,
      },
    ]);
    expect(parseSysvShm('')).toEqual([]);
  });

  it('parseMountinfo: fields after the separator, escaped paths, super options', () => {
    const text = [
      '36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory',
      '40 24 0:34 / /mnt/my\\040disk rw,relatime - tmpfs pagewalk rw,size=262144k',
      '',
    ].join('\n');
    const [cg, tmp] = parseMountinfo(text);
    expect(cg).toMatchObject({
      id: 36,
      parentId: 25,
      deviceMajor: 0,
      deviceMinor: 31,
      mountPoint: '/sys/fs/cgroup/memory',
      fsType: 'cgroup',
    });
    expect(cg.superOptions).toContain('memory');
    expect(tmp).toMatchObject({ mountPoint: '/mnt/my disk', fsType: 'tmpfs', source: 'pagewalk' });
    expect(() => parseMountinfo('not a line\n')).toThrow(RangeError);
  });

  it('parseMemoryStat: numbers by key', () => {
    expect(parseMemoryStat('cache 50331648\nrss 0\nhierarchical_memory_limit 4096\n')).toEqual({
      cache: 50331648,
      rss: 0,
      hierarchical_memory_limit: 4096,
    });
  });
});

describe('the census arithmetic, on made-up frame counts', () => {
  const P = 4096;
  // One zone of 900 frames, 300 in the buddy lists and 25 on per-CPU lists.
  const zone = (managed: number) => ({
    node: 0,
    name: 'Normal',
    startPfn: 0,
    spanned: 900,
    present: 900,
    managed,
    freePages: 300,
    perCpuPages: 25,
  });
  function inputs(
    frames: Partial<Record<keyof typeof FrameClass, number>>,
    over: Partial<CensusInputs> = {},
  ): CensusInputs {
    const row = new Array(native.frameClasses).fill(0);
    for (const [k, v] of Object.entries(frames)) row[FrameClass[k as keyof typeof FrameClass]] = v;
    const framesRead = row.reduce((s, n) => s + n, 0);
    return {
      counts: {
        frames: row,
        perCgroup: new Map([[7, Object.assign(new Array(native.frameClasses).fill(0), { [FrameClass.File]: 100 })]]),
        framesRead,
        bytesRead: 0,
      },
      ram: [{ start: 0, end: 900 }],
      zones: [zone(730)],
      meminfo: {
        MemTotal: 850 * P,
        MemFree: 420 * P,
        KernelStack: 8 * P,
        VmallocUsed: 18 * P,
        Percpu: 2 * P,
        SReclaimable: 30 * P,
      },
      meminfoBefore: { MemFree: 420 * P },
      snap: undefined,
      objects: [],
      hierarchy: undefined,
      ...over,
    };
  }
  const machine = {
    Hole: 100,
    Buddy: 300,
    Reserved: 10,
    Slab: 40,
    PageTable: 5,
    MappedAnon: 100,
    MappedFile: 50,
    MappedShmem: 5,
    File: 150,
    Shmem: 20,
    SwapCache: 2,
    AnonUnmapped: 3,
    OtherFlagged: 5,
    Unflagged: 210,
  };
  const part = (n: RamNode, ...names: string[]): number => {
    let at: RamNode | undefined = n;
    for (const name of names) at = at?.children?.find((c) => c.name === name);
    if (!at) throw new Error(`no ${names.join(' › ')}`);
    return at.bytes / P;
  };
  const exact = (n: RamNode): void => {
    if (!n.children) return;
    expect(
      n.children.reduce((s, c) => s + c.bytes, 0),
      n.name,
    ).toBe(n.bytes);
    n.children.forEach(exact);
  };

  it('places the frames without flags by the kernel totals, steadiest first, the rest unexplained', () => {
    const c = buildCensus(inputs(machine));
    exact(c.tree);
    expect(c.total).toBe(1000 * P);
    expect(part(c.tree, 'free')).toBe(300 + 25 + 120);
    expect(part(c.tree, 'free', 'outside the zone allocators')).toBe(850 - 730);
    expect(part(c.tree, 'kernel', 'reserved at boot, no flag')).toBe(900 - 850 - 10);
    expect(part(c.tree, 'kernel', 'slab reclaimable')).toBe(30);
    expect(part(c.tree, 'kernel', 'slab unreclaimable')).toBe(10);
    expect(part(c.tree, 'kernel', 'vmalloc')).toBe(10);
    expect(part(c.tree, 'kernel')).toBe(40 + 5 + 10 + 40 + 8 + 10 + 2 + 5);
    expect(c.unexplained.bytes / P).toBe(210 - 120 - 40 - 8 - 10 - 2 - 25);
    expect(c.unexplained.short).toBe(0);
    expect(part(c.tree, 'page-cache', '(removed cgroup, inode 7)')).toBe(100);
    expect(part(c.tree, 'page-cache', '(no cgroup read)')).toBe(50);
    expect(c.reconciliation.checks[0].difference).toBe(0);
  });

  it('when the totals claim more than the unflagged frames, gives the last less and says by how much', () => {
    const c = buildCensus(
      inputs(machine, {
        zones: [zone(550)],
      }),
    );
    exact(c.tree);
    expect(c.tree.children?.reduce((s, n) => s + n.bytes, 0)).toBe(c.total);
    expect(part(c.tree, 'free', 'outside the zone allocators')).toBe(210);
    expect(c.unexplained.bytes).toBe(0);
    expect(c.unexplained.short / P).toBe(300 - 210 + 40 + 8 + 10 + 2 + 25);
  });

  it('without /proc/iomem addresses, takes the holes from the zones', () => {
    const c = buildCensus(inputs({ ...machine, Hole: 0, Unflagged: 310 }, { ram: [] }));
    exact(c.tree);
    expect(part(c.tree, 'holes', 'not present in any zone')).toBe(100);
    expect(c.unexplained.bytes / P).toBe(5);
  });
});

describe('parseKernelImage', () => {
  it('adds the kernel code, rodata, data and bss ranges under System RAM', () => {
    const text = [
      '00001000-0009fbff : System RAM',
      '00100000-bfffffff : System RAM',
      '  01000000-02276987 : Kernel code',
      '  02400000-02e0afff : Kernel rodata',
      '  03000000-0327c0bf : Kernel data',
      '  03b36000-03c66fff : Kernel bss',
      'c0000000-febfffff : PCI Bus 0000:00',
    ].join('\n');
    expect(parseKernelImage(text)).toBe(0x1276988 + 0xa0b000 + 0x27c0c0 + 0x131000);
  });

  it('is null when the addresses are hidden (not root)', () => {
    expect(parseKernelImage('00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n')).toBeNull();
  });
});
