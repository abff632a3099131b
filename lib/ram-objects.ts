// The named things whose pages no process needs to map to stay in memory:
// tmpfs files (every tmpfs and devtmpfs mount searched), memfds, System V
// segments, deleted files held open, and the files processes hold open or
// map. Each with its resident pages (cachestat(2), mincore where the kernel
// lacks it), the pages of it some process maps (a union over every mapping
// of it, from pagemap), and the processes holding it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAP_FILE_BACKED, MapField, native } from './native';
import { PAGE } from './page';
import { openPagemap, PM_FILE, PM_PRESENT, ScanCategory } from './pagemap';
import { readMemoryCgroup } from './proc/cgroup';
import { readMountinfo } from './proc/mountinfo';
import { readSysvShm } from './proc/sysvipc';
import { listPids } from './snapshot';
import { procmapQueryDisabled } from './switches';

const TMPFS_MAGIC = 0x01021994;

export type ObjectKind = 'tmpfs' | 'memfd' | 'sysv' | 'deleted' | 'file';

export interface ResidentObject {
  kind: ObjectKind;
  /** A tmpfs or open file by its path, `memfd:NAME`, `SysV key 0x0000abcd id 5`, `PATH (deleted)`. */
  name: string;
  /** On tmpfs/shmem: its pages are swap-backed (shmem), not page cache. */
  shmem: boolean;
  /** Processes that hold it open or map it. */
  holders: number[];
  /** The memory cgroup paths of the holders. */
  holderCgroups: string[];
  /** Resident pages of it. */
  cachedPages: number;
  /** Of which some process maps (counted under processes, not here). */
  mappedPages: number;
  /** Pages in swap (tmpfs/shmem objects). */
  swappedPages: number;
  /** Counted by mincore (no cachestat in this kernel). */
  viaMincore: boolean;
}

interface Candidate extends ResidentObject {
  /** A path that opens it: the file, /proc/PID/fd/N or /proc/PID/map_files/A-B. */
  openPath?: string;
  /** Mappings of it: (pid, first page, pages, file page offset). */
  mappings: { pid: number; start: bigint; pages: number; offsetPage: number }[];
  holderSet: Set<number>;
  cgroupSet: Set<string>;
}

/** major:minor:inode, as /proc/PID/maps prints them (device in hex there). */
function keyOf(major: number, minor: number, inode: bigint | number): string {
  return `${major}:${minor}:${inode}`;
}

// The kernel's dev_t encoding (new_decode_dev).
function devParts(dev: number): [number, number] {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

function isTmpfs(p: string): boolean {
  try {
    return fs.statfsSync(p).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

export interface FindObjectsOptions {
  /** Also find regular files (page cache) that processes map or hold open. Default true. */
  files?: boolean;
}

/**
 * Every tmpfs file, memfd, SysV segment, deleted file held open and (with
 * `files`) open or mapped regular file, with resident pages. Objects that
 * vanish while being looked at are left out.
 */
export async function findResidentObjects(options: FindObjectsOptions = {}): Promise<ResidentObject[]> {
  const wantFiles = options.files ?? true;
  const byKey = new Map<string, Candidate>();
  const add = (key: string, init: () => Omit<Candidate, 'mappings' | 'holderSet' | 'cgroupSet'>): Candidate => {
    let c = byKey.get(key);
    if (!c) {
      c = { ...init(), mappings: [], holderSet: new Set(), cgroupSet: new Set() };
      byKey.set(key, c);
    }
    return c;
  };
  const blank = { holders: [], holderCgroups: [], cachedPages: 0, mappedPages: 0, swappedPages: 0, viaMincore: false };

  // 1. Files on every tmpfs and devtmpfs mount (each superblock once).
  const seenDevices = new Set<string>();
  let mounts: ReturnType<typeof readMountinfo> = [];
  try {
    mounts = readMountinfo('self');
  } catch {
    // no mountinfo: only what processes hold
  }
  for (const m of mounts) {
    if (m.fsType !== 'tmpfs' && m.fsType !== 'devtmpfs') continue;
    const dev = `${m.deviceMajor}:${m.deviceMinor}`;
    if (seenDevices.has(dev)) continue;
    seenDevices.add(dev);
    let rootDev: number;
    try {
      rootDev = fs.statSync(m.mountPoint).dev;
    } catch {
      continue;
    }
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (!e.isDirectory() && !e.isFile()) continue;
        let st: fs.Stats;
        try {
          st = fs.lstatSync(p);
        } catch {
          continue;
        }
        if (st.dev !== rootDev) continue; // another filesystem mounted here
        if (e.isDirectory()) walk(p);
        else if (st.blocks > 0 || st.size > 0) {
          const [major, minor] = devParts(st.dev);
          add(keyOf(major, minor, st.ino), () => ({ kind: 'tmpfs', name: p, shmem: true, openPath: p, ...blank }));
        }
      }
    };
    walk(m.mountPoint);
  }

  // 2. SysV segments: their files live on the kernel's internal shm mount
  // (maps shows /SYSV<key> (deleted)); the inode is the shmid.
  const sysv = new Map<number, Candidate>();
  for (const s of readSysvShm()) {
    const c: Candidate = {
      kind: 'sysv',
      name: `SysV key 0x${s.key.toString(16).padStart(8, '0')} id ${s.shmid}`,
      shmem: true,
      ...blank,
      cachedPages: Math.round(s.rss / PAGE),
      swappedPages: Math.round(s.swap / PAGE),
      mappings: [],
      holderSet: new Set(),
      cgroupSet: new Set(),
    };
    sysv.set(s.shmid, c);
  }

  // 3. What each process holds open and maps.
  for (const pid of listPids()) {
    let cgroup: string | undefined;
    try {
      cgroup = readMemoryCgroup(pid)?.path;
    } catch {
      continue; // exited
    }
    const hold = (c: Candidate) => {
      c.holderSet.add(pid);
      if (cgroup !== undefined) c.cgroupSet.add(cgroup);
    };
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      // exited, or a kernel thread
    }
    for (const fd of fds) {
      const link = `/proc/${pid}/fd/${fd}`;
      let target: string;
      try {
        target = fs.readlinkSync(link);
      } catch {
        continue;
      }
      if (!target.startsWith('/')) continue; // socket:, pipe:, anon_inode:
      let st: fs.Stats;
      try {
        st = fs.statSync(link);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      const [major, minor] = devParts(st.dev);
      const key = keyOf(major, minor, st.ino);
      const deleted = target.endsWith(' (deleted)');
      if (target.startsWith('/memfd:')) {
        const name = `memfd:${target.slice('/memfd:'.length).replace(/ \(deleted\)$/, '')}`;
        hold(add(key, () => ({ kind: 'memfd', name, shmem: true, openPath: link, ...blank })));
      } else if (target.startsWith('/SYSV')) {
        const s = sysv.get(st.ino);
        if (s) hold(s);
      } else if (deleted) {
        hold(add(key, () => ({ kind: 'deleted', name: target, shmem: isTmpfs(link), openPath: link, ...blank })));
      } else if (byKey.has(key) || wantFiles) {
        hold(add(key, () => ({ kind: 'file', name: target, shmem: isTmpfs(link), openPath: link, ...blank })));
      }
    }
    // Mappings of files, from PROCMAP_QUERY's file-backed filter where the
    // kernel has it (anonymous mappings stepped over in the kernel).
    let records: Float64Array;
    try {
      records = await native.readMappings(pid, MAP_FILE_BACKED, !procmapQueryDisabled());
    } catch {
      continue;
    }
    for (let i = 0; i < records.length; i += native.mapFields) {
      const startPage = records[i + MapField.StartPage];
      const endPage = records[i + MapField.EndPage];
      const major = records[i + MapField.DevMajor];
      const minor = records[i + MapField.DevMinor];
      const inode = records[i + MapField.InodeHigh] * 2 ** 32 + records[i + MapField.InodeLow];
      const key = keyOf(major, minor, inode);
      let c = byKey.get(key);
      if (!c) {
        // Not seen yet: its name from the mapping's link (SysV segments,
        // memfds and deleted files whose descriptors are closed, libraries).
        const mapFile = `/proc/${pid}/map_files/${(startPage * PAGE).toString(16)}-${(endPage * PAGE).toString(16)}`;
        let target: string;
        try {
          target = fs.readlinkSync(mapFile);
        } catch {
          continue;
        }
        if (target.startsWith('/SYSV')) {
          c = sysv.get(inode);
          if (c) byKey.set(key, c);
        } else {
          const shmem = major === 0 && isTmpfs(mapFile);
          if (!shmem && !wantFiles) continue;
          const memfd = target.startsWith('/memfd:');
          const name = memfd ? `memfd:${target.slice('/memfd:'.length).replace(/ \(deleted\)$/, '')}` : target;
          const deleted = target.endsWith(' (deleted)');
          const kind: ObjectKind = memfd ? 'memfd' : deleted ? 'deleted' : shmem ? 'tmpfs' : 'file';
          c = add(key, () => ({ kind, name, shmem, openPath: mapFile, ...blank }));
        }
      }
      if (!c) continue;
      hold(c);
      c.mappings.push({
        pid,
        start: BigInt(startPage * PAGE),
        pages: endPage - startPage,
        offsetPage: records[i + MapField.OffsetPage],
      });
    }
  }

  // 4. Resident pages of each (SysV from /proc/sysvipc/shm already).
  const cands = [...byKey.values()].filter((c) => c.openPath);
  const stats = await native.fileCache(cands.map((c) => c.openPath as string));
  cands.forEach((c, i) => {
    if (stats[i * 6 + 4] !== 0) {
      c.cachedPages = -1; // unreadable or gone: left out
      return;
    }
    c.cachedPages = stats[i * 6];
    c.swappedPages = c.shmem ? stats[i * 6 + 3] : 0;
    c.viaMincore = stats[i * 6 + 5] === 1;
  });
  const all = [...cands.filter((c) => c.cachedPages > 0), ...[...sysv.values()].filter((c) => c.cachedPages > 0)];

  // 5. Pages of each that some process maps: present file pages of every
  // mapping, as file offsets, in one bitmap per object.
  const byPid = new Map<number, { c: Candidate; m: Candidate['mappings'][number] }[]>();
  for (const c of all) {
    for (const m of c.mappings) {
      let list = byPid.get(m.pid);
      if (!list) byPid.set(m.pid, (list = []));
      list.push({ c, m });
    }
  }
  const bitmaps = new Map<Candidate, Uint8Array>();
  for (const [pid, list] of byPid) {
    let handle: ReturnType<typeof openPagemap>;
    try {
      handle = openPagemap(pid);
    } catch {
      continue; // exited: its mappings are gone with it
    }
    try {
      for (const { c, m } of list) {
        let bits = bitmaps.get(c);
        const need = m.offsetPage + m.pages;
        if (!bits || bits.length * 8 < need) {
          const grown = new Uint8Array(Math.ceil(need / 8));
          if (bits) grown.set(bits);
          bits = grown;
          bitmaps.set(c, bits);
        }
        const mark = (firstPage: number, pages: number) => {
          for (let off = m.offsetPage + firstPage, end = off + pages; off < end; off++)
            bits[off >> 3] |= 1 << (off & 7);
        };
        try {
          // Present pages backed by the file (a private mapping's copies are
          // anonymous), as runs: PAGEMAP_SCAN where the kernel has it.
          const end = m.start + BigInt(m.pages * PAGE);
          const scan = handle.scan(m.start, end, {
            require: ScanCategory.PRESENT | ScanCategory.FILE,
            anyOf: ScanCategory.PRESENT,
            report: ScanCategory.PRESENT | ScanCategory.FILE,
          });
          if (scan.supported) {
            for (const r of scan.regions)
              mark(Number((r.start - m.start) / BigInt(PAGE)), Number((r.end - r.start) / BigInt(PAGE)));
            continue;
          }
          const entries = await handle.readAsync(m.start, m.pages);
          for (let i = 0; i < entries.length; i++)
            if ((entries[i] & PM_PRESENT) !== 0n && (entries[i] & PM_FILE) !== 0n) mark(i, 1);
        } catch {
          break; // exited: its mappings are gone with it
        }
      }
    } finally {
      handle.close();
    }
  }
  for (const [c, bits] of bitmaps) {
    let n = 0;
    for (const b of bits) {
      let v = b;
      while (v) {
        v &= v - 1;
        n++;
      }
    }
    c.mappedPages = Math.min(n, c.cachedPages);
  }
  return all.map((c) => ({
    kind: c.kind,
    name: c.name,
    shmem: c.shmem,
    holders: [...c.holderSet].sort((a, b) => a - b),
    holderCgroups: [...c.cgroupSet].sort(),
    cachedPages: c.cachedPages,
    mappedPages: c.mappedPages,
    swappedPages: c.swappedPages,
    viaMincore: c.viaMincore,
  }));
}
