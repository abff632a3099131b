// The /proc parsers the RAM census reads through, on text: /proc/iomem,
// /proc/zoneinfo, /proc/sysvipc/shm, /proc/PID/mountinfo and memory.stat.
import { describe, expect, it } from 'vitest';
import { parseMemoryStat } from '../lib/memcg';
import { parseSystemRam } from '../lib/proc/iomem';
import { parseMountinfo } from '../lib/proc/mountinfo';
import { parseSysvShm } from '../lib/proc/sysvipc';
import { parseZoneinfo } from '../lib/proc/zoneinfo';

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
