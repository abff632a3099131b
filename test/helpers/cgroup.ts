// Memory cgroups made for a test, and the kernel's own view of them: the
// charge counters and, page by page, which cgroup each page is charged to
// (/proc/kpagecgroup).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMemoryCgroup } from '../../lib/proc/cgroup';
import { readMaps } from '../../lib/proc/maps';
import { readPagemapPlain } from './oracle';

export interface TestCgroup {
  /** The directory in the memory hierarchy. */
  dir: string;
  /** The path /proc/PID/cgroup shows for its processes. */
  path: string;
  version: 1 | 2;
  /** The inode /proc/kpagecgroup names it by. */
  inode: bigint;
  /** Prefix for a command that starts in the cgroup: `sh -c` joins it, then execs the rest. */
  via: string[];
  /** memory.usage_in_bytes (v1) or memory.current (v2). */
  usage(): number;
  /** memory.stat as numbers. */
  stat(): Record<string, number>;
  remove(): Promise<void>;
}

/** Where this process' memory hierarchy (v1) or the v2 hierarchy is mounted, from /proc/self/mountinfo. */
function mountOf(version: 1 | 2): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [fstype, , options] = right.split(' ');
    const mountPoint = left.split(' ')[4];
    if (version === 2 && fstype === 'cgroup2') return mountPoint;
    if (version === 1 && fstype === 'cgroup' && options.split(',').includes('memory')) return mountPoint;
  }
  return undefined;
}

function memoryMount(version: 1 | 2): string {
  const mount = mountOf(version);
  if (mount === undefined) throw new Error(`no cgroup v${version} memory hierarchy mounted`);
  return mount;
}

/** Why this host has no cgroup v1 memory hierarchy (or no v2 one) to make cgroups in; undefined when it has. */
export function cgroupHierarchyMissing(version: 1 | 2): string | undefined {
  if (mountOf(version) === undefined)
    return version === 1 ? 'no cgroup v1 memory hierarchy is mounted' : 'no cgroup v2 hierarchy is mounted';
  if (ownCgroupPath(version) === undefined) return `this process is in no cgroup v${version} hierarchy`;
  return undefined;
}

/** This process' cgroup path in the v1 memory hierarchy or the v2 one. */
function ownCgroupPath(version: 1 | 2): string | undefined {
  const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const own =
    version === 1
      ? lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))
      : lines.find((l) => l.startsWith('0::'));
  return own?.slice(own.indexOf(':', own.indexOf(':') + 1) + 1);
}

/** Creates a child memory cgroup of this process' own, to be removed by remove(). */
export function createMemoryCgroup(name: string): TestCgroup {
  const own = readMemoryCgroup(process.pid);
  if (!own) throw new Error('this kernel has no memory cgroup');
  const cgPath = path.posix.join(own.path, name);
  const dir = path.join(memoryMount(own.version), cgPath);
  fs.mkdirSync(dir);
  const read = (file: string) => fs.readFileSync(path.join(dir, file), 'utf8');
  return {
    dir,
    path: cgPath,
    version: own.version,
    inode: BigInt(fs.statSync(dir).ino),
    via: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs')],
    usage: () => Number(read(own.version === 1 ? 'memory.usage_in_bytes' : 'memory.current')),
    stat: () => {
      const out: Record<string, number> = {};
      for (const line of read('memory.stat').split('\n')) {
        const [k, v] = line.split(' ');
        if (k && v !== undefined) out[k] = Number(v);
      }
      return out;
    },
    remove: async () => {
      // The members must have exited; rmdir fails with EBUSY until the kernel has let them go.
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(dir);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || i === 49) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}

/** A cgroup of a CgroupTree: its path as /proc/PID/cgroup shows it, and how to start a process in it. */
export interface TreeCgroup {
  dir: string;
  path: string;
  /** Prefix for a command that starts in the cgroup (see TestCgroup.via). */
  via: string[];
}

export interface CgroupTree {
  version: 1 | 2;
  /** The tree's root, a child of this process' own cgroup. */
  root: TreeCgroup;
  /** Makes `relative` (and every missing directory above it) under the root. */
  make(relative: string): TreeCgroup;
  /** Removes every directory made, deepest first; members must have exited. */
  remove(): Promise<void>;
}

async function rmdirWhenFree(dir: string): Promise<void> {
  // rmdir fails with EBUSY until the kernel has let the members go.
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i === 49) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A tree of cgroups under this process' own cgroup, in the v1 memory
 * hierarchy or in the v2 one (on a hybrid host the v2 hierarchy has no
 * memory controller, but /proc/PID/cgroup shows its path all the same).
 */
export function createCgroupTree(version: 1 | 2, name: string): CgroupTree {
  const why = cgroupHierarchyMissing(version);
  if (why) throw new Error(why);
  const mount = memoryMount(version);
  const base = ownCgroupPath(version) as string;
  const made: string[] = [];
  const at = (relative: string): TreeCgroup => {
    const cgPath = path.posix.join(base, name, relative);
    const dir = path.join(mount, cgPath);
    return { dir, path: cgPath, via: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs')] };
  };
  const make = (relative: string): TreeCgroup => {
    const parts = relative.split('/').filter(Boolean);
    for (let i = 0; i <= parts.length; i++) {
      const { dir } = at(parts.slice(0, i).join('/'));
      if (fs.existsSync(dir)) continue;
      fs.mkdirSync(dir);
      made.push(dir);
    }
    return at(relative);
  };
  const root = make('');
  return {
    version,
    root,
    make,
    remove: async () => {
      for (const dir of made.splice(0).reverse()) await rmdirWhenFree(dir);
    },
  };
}

const PRESENT = 1n << 63n;
const PFN = (1n << 55n) - 1n;

function readWords(fd: number, pfns: bigint[]): bigint[] {
  const buf = Buffer.alloc(8);
  return pfns.map((pfn) => {
    fs.readSync(fd, buf, 0, 8, Number(pfn * 8n));
    return buf.readBigUInt64LE(0);
  });
}

/**
 * The distinct normal pages the processes map, split by the cgroup they are
 * charged to: this one (inode) or another. Plain reads, independent of the
 * library's walk.
 */
export function pagesByCharge(pids: number[], inode: bigint): { here: number; elsewhere: number } {
  const pfns = new Set<bigint>();
  for (const pid of pids) {
    for (const m of readMaps(pid)) {
      if (m.start >= 1n << 63n) continue;
      for (const e of readPagemapPlain(pid, m.start, m.size / 4096)) if (e & PRESENT) pfns.add(e & PFN);
    }
  }
  const list = [...pfns];
  const fds = ['kpageflags', 'kpagecount', 'kpagecgroup'].map((f) => fs.openSync(`/proc/${f}`, 'r'));
  try {
    const [flags, counts, cgroups] = fds.map((fd) => readWords(fd, list));
    let here = 0;
    let elsewhere = 0;
    list.forEach((_, i) => {
      const f = flags[i];
      // Not a normal page: zero page (24), no page (20), hugetlb (17), unmapped.
      if ((f >> 24n) & 1n || (f >> 20n) & 1n || (f >> 17n) & 1n || counts[i] === 0n) return;
      if (cgroups[i] === inode) here++;
      else elsewhere++;
    });
    return { here, elsewhere };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}
