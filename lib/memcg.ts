// The memory cgroup hierarchy as /proc/kpagecgroup names it: each cgroup
// directory's inode, its path, and its own memory.stat. Works where the
// memory controller has a v1 hierarchy of its own (v1 and hybrid setups)
// and under the unified v2 hierarchy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Mount, readMountinfo } from './proc/mountinfo';

export interface MemcgDir {
  /** The directory's inode: what /proc/kpagecgroup gives for the pages charged to it. */
  inode: number;
  /** Path inside the hierarchy, as /proc/PID/cgroup shows it ('/' for the root). */
  path: string;
  /** Where the directory is. */
  dir: string;
}

export interface MemcgHierarchy {
  /** 1: the memory controller's own v1 hierarchy; 2: the unified hierarchy. */
  version: 1 | 2;
  mountPoint: string;
  cgroups: MemcgDir[];
}

/** The mount of the hierarchy that carries the memory controller, if any. */
export function memoryHierarchyMount(mounts: Mount[]): { version: 1 | 2; mount: Mount } | undefined {
  const v1 = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('memory') && m.root === '/');
  if (v1) return { version: 1, mount: v1 };
  for (const m of mounts) {
    if (m.fsType !== 'cgroup2' || m.root !== '/') continue;
    try {
      const controllers = fs.readFileSync(path.join(m.mountPoint, 'cgroup.controllers'), 'utf8');
      if (controllers.split(/\s+/).includes('memory')) return { version: 2, mount: m };
    } catch {
      // unreadable: not this one
    }
  }
  return undefined;
}

/** Every cgroup of the memory hierarchy with its inode; undefined without one. */
export function readMemcgHierarchy(mounts: Mount[] = readMountinfo('self')): MemcgHierarchy | undefined {
  const found = memoryHierarchyMount(mounts);
  if (!found) return undefined;
  const root = found.mount.mountPoint;
  const cgroups: MemcgDir[] = [];
  const visit = (dir: string, rel: string) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      return; // removed meanwhile
    }
    cgroups.push({ inode: st.ino, path: rel, dir });
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) visit(path.join(dir, e.name), path.posix.join(rel, e.name));
    }
  };
  visit(root, '/');
  return { version: found.version, mountPoint: root, cgroups };
}

/** memory.stat as numbers (bytes for sizes, as the kernel prints them). */
export function parseMemoryStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** A cgroup's memory.stat; undefined when it is gone or has none (the v2 root). */
export function readMemoryStat(dir: string): Record<string, number> | undefined {
  try {
    return parseMemoryStat(fs.readFileSync(path.join(dir, 'memory.stat'), 'utf8'));
  } catch {
    return undefined;
  }
}
