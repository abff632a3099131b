// ramCensus() against objects of known size that no process maps: a tmpfs
// file, a memfd held open, a SysV segment, a deleted tmpfs file held open,
// and the page cache of an ext4 file read by a process of a memory cgroup of
// its own that has since exited. Measured right after they are made (this
// host's DAMON pages out what stays idle for about a minute).
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMemcgHierarchy } from '../lib/memcg';
import { native } from '../lib/native';
import { readMountinfo } from '../lib/proc/mountinfo';
import { type RamCensus, type RamNode, ramCensus } from '../lib/ram';
import { createMemoryCgroup, type TestCgroup } from './helpers/cgroup';
import { fixtureBin } from './helpers/fixture';

const MIB = 1024 * 1024;
const TAG = String(5_000_000 + (process.pid % 1_000_000));
const EXT4_MAGIC = 0xef53;

interface Held {
  pid: number;
  mapped: string;
  tmpfsFile: string;
  memfd: string;
  shmid: number;
  key: number;
  deleted: string;
}

let mountDir = '';
let holder: ChildProcess | undefined;
let held: Held;
let cgroup: TestCgroup | undefined;
let cacheFile = '';
let cacheSkip = '';
let census: RamCensus;

function find(n: RamNode, name: string): RamNode | undefined {
  if (n.name === name) return n;
  for (const c of n.children ?? []) {
    const hit = find(c, name);
    if (hit) return hit;
  }
  return undefined;
}

function category(name: string): RamNode {
  const c = census.tree.children?.find((n) => n.name === name);
  if (!c) throw new Error(`no category ${name}`);
  return c;
}

/**
 * A shmem object's size: its frames plus its pages in swap, which the census
 * notes ("N bytes in swap"). This host pages out shmem nobody touched for a
 * while (DAMON), and a sanitizer run once found 63 of a 24 MiB file's pages
 * there.
 */
function objectSize(n: RamNode | undefined): number {
  const swapped = /(\d+) bytes in swap/.exec(n?.note ?? '');
  return (n?.bytes ?? 0) + (swapped ? Number(swapped[1]) : 0);
}

function within(actual: number, expected: number, fraction: number, what: string): void {
  expect(
    Math.abs(actual - expected),
    `${what}: ${actual} bytes, expected ${expected} ±${fraction * 100}%`,
  ).toBeLessThanOrEqual(expected * fraction);
}

/** 48 MiB of an ext4 file in the page cache, charged to a cgroup whose one process read it and exited. */
async function cacheInCgroup(): Promise<void> {
  const dir = '/var/tmp';
  if (fs.statfsSync(dir).type !== EXT4_MAGIC) {
    cacheSkip = `${dir} is not on ext4`;
    return;
  }
  cacheFile = path.join(dir, `pagewalk-ram-${TAG}`);
  fs.writeFileSync(cacheFile, Buffer.alloc(48 * MIB, 0x5a));
  // Written here, its pages are charged to this process' cgroup: drop them,
  // so that the reader in the new cgroup brings them in (and is charged).
  execFileSync(fixtureBin('ramobjects'), ['evict', cacheFile]);
  const stat = await native.fileCache([cacheFile]);
  expect(stat[0], 'pages of the file still cached after eviction').toBeLessThan(256);
  cgroup = createMemoryCgroup(`pagewalk-ram-${TAG}`);
  const r = spawnSync(cgroup.via[0], [...cgroup.via.slice(1), 'cat', cacheFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  expect(r.status).toBe(0);
}

beforeAll(async () => {
  mountDir = fs.mkdtempSync('/tmp/pagewalk-ram-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', `pagewalk-ram-${TAG}`, mountDir]);
  holder = spawn(fixtureBin('ramobjects'), ['hold', TAG, mountDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: holder.stdout! });
  held = JSON.parse(
    await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      holder?.once('exit', (code) => reject(new Error(`ramobjects exited with ${code}`)));
    }),
  );
  rl.close();
  await cacheInCgroup();
  census = await ramCensus();
}, 60_000);

afterAll(async () => {
  if (holder && holder.exitCode === null) {
    const exited = new Promise((r) => holder?.once('exit', r));
    holder.kill('SIGTERM'); // removes the SysV segment and the files
    await exited;
  }
  if (mountDir) {
    spawnSync('umount', [mountDir]);
    fs.rmdirSync(mountDir);
  }
  if (cacheFile) fs.rmSync(cacheFile, { force: true });
  await cgroup?.remove();
});

describe('ramCensus()', () => {
  it('counts every frame once: the categories sum to the total, every part to its whole', () => {
    const sum = (census.tree.children ?? []).reduce((s, c) => s + c.bytes, 0);
    expect(sum).toBe(census.total);
    expect(census.tree.bytes).toBe(census.total);
    const check = (n: RamNode) => {
      expect(n.bytes, n.name).toBeGreaterThanOrEqual(0);
      if (!n.children) return;
      expect(
        n.children.reduce((s, c) => s + c.bytes, 0),
        `the parts of ${n.name}`,
      ).toBe(n.bytes);
      n.children.forEach(check);
    };
    check(census.tree);
    expect(census.tree.children?.map((c) => c.name).sort()).toEqual(
      ['anon-unmapped', 'free', 'holes', 'hugetlb', 'kernel', 'page-cache', 'processes', 'shmem', 'unexplained'].sort(),
    );
    // The frames of the machine: one per PFN up to max_pfn.
    expect(census.total % 4096).toBe(0);
    const r = census.reconciliation;
    expect(r.ram).toBeGreaterThanOrEqual(r.memTotal);
    expect(census.total).toBe(r.memTotal + r.reservedAtBoot + r.holes);
    console.log('reconciliation:', r.checks.map((c) => `${c.name}: ${c.difference}`).join('; '));
  });

  it('keeps unexplained under 2% of MemTotal', () => {
    console.log(
      `unexplained: ${census.unexplained.bytes} bytes, ${(census.unexplained.ofMemTotal * 100).toFixed(3)}% of MemTotal: ${census.unexplained.what}`,
    );
    expect(census.unexplained.ofMemTotal).toBeLessThan(0.02);
    // Nor did the kernel's totals claim much more than the frames without flags held.
    expect(census.unexplained.short / census.reconciliation.memTotal).toBeLessThan(0.02);
    expect(category('unexplained').bytes).toBe(census.unexplained.bytes);
  });

  it('names a tmpfs file by its path', () => {
    const n = find(category('shmem'), held.tmpfsFile);
    expect(n, `${held.tmpfsFile} under shmem`).toBeDefined();
    within(objectSize(n), 64 * MIB, 0.01, held.tmpfsFile);
  });

  it('names a memfd with the process holding it', () => {
    const n = find(category('shmem'), held.memfd);
    expect(n, `${held.memfd} under shmem`).toBeDefined();
    within(objectSize(n), 32 * MIB, 0.01, held.memfd);
    expect(n?.pids).toContain(held.pid);
  });

  it('names a SysV segment by key and id', () => {
    const name = `SysV key 0x${(held.key >>> 0).toString(16).padStart(8, '0')} id ${held.shmid}`;
    const n = find(category('shmem'), name);
    expect(n, `${name} under shmem`).toBeDefined();
    within(objectSize(n), 16 * MIB, 0.01, name);
  });

  it('names a deleted file held open, with its holder', () => {
    const name = `${held.deleted} (deleted)`;
    const n = find(category('shmem'), name);
    expect(n, `${name} under shmem`).toBeDefined();
    within(objectSize(n), 24 * MIB, 0.01, name);
    expect(n?.pids).toContain(held.pid);
  });

  it('counts under shmem only the pages of a file no process maps', () => {
    // 8 MiB resident, the first 4 MiB mapped (and read) by the holder: those are under processes.
    const n = find(category('shmem'), held.mapped);
    expect(n, `${held.mapped} under shmem`).toBeDefined();
    within(n?.bytes ?? 0, 4 * MIB, 0.01, held.mapped);
    expect(n?.note).toMatch(/^4194304 bytes more are mapped \(under processes\)/);
  });

  it("puts a cgroup's page cache under the cgroup, after its reader exited", (ctx) => {
    if (cacheSkip) {
      console.log(`skipped: ${cacheSkip}`);
      ctx.skip();
    }
    const cg = cgroup as TestCgroup;
    const n = category('page-cache').children?.find((c) => c.name === cg.path);
    expect(n, `${cg.path} under page-cache`).toBeDefined();
    within(n?.bytes ?? 0, 48 * MIB, 0.05, `page cache of ${cg.path}`);
    // What the cgroup is charged for, against its own memory.stat.
    const charge = census.cgroups.find((c) => c.inode === Number(cg.inode));
    expect(charge?.path).toBe(cg.path);
    within(charge?.file ?? 0, 48 * MIB, 0.05, `file pages charged to ${cg.path}`);
    expect(charge?.anon).toBe(0);
    const cache = charge?.checks.find((c) => c.name.startsWith('file + shmem'));
    expect(cache, 'the check against memory.stat').toBeDefined();
    console.log(
      `${cg.path} (v${cg.version}):`,
      charge?.checks.map((c) => `${c.name}: ${c.census} vs ${c.kernel}`).join('; '),
    );
    within(cache?.census ?? 0, cache?.kernel ?? 0, 0.05, 'census against memory.stat');
  });

  it('rejects with the path when the frame files cannot be read, and checks its options', async () => {
    const empty = fs.mkdtempSync('/tmp/pagewalk-ram-nokpage-');
    const saved = process.env.PAGEWALK_KPAGE_DIR;
    process.env.PAGEWALK_KPAGE_DIR = empty;
    try {
      await expect(ramCensus({ processes: false })).rejects.toMatchObject({
        code: 'ENOENT',
        syscall: 'open',
        path: `${empty}/kpageflags`,
      });
    } finally {
      if (saved === undefined) delete process.env.PAGEWALK_KPAGE_DIR;
      else process.env.PAGEWALK_KPAGE_DIR = saved;
      fs.rmdirSync(empty);
    }
    await expect(ramCensus({ groupBy: 'colour' as never })).rejects.toThrow(RangeError);
    await expect(ramCensus({ onProgress: 5 as never })).rejects.toThrow(TypeError);
  });

  it('knows the cgroups under a v2 memory hierarchy too, where there is one', (ctx) => {
    const v2 = readMountinfo('self').find((m) => m.fsType === 'cgroup2');
    const controllers = v2 ? fs.readFileSync(path.join(v2.mountPoint, 'cgroup.controllers'), 'utf8') : '';
    const h = readMemcgHierarchy();
    if (!controllers.split(/\s+/).includes('memory')) {
      console.log(
        `skipped: the unified hierarchy${v2 ? ` at ${v2.mountPoint}` : ''} has no memory controller here (memory is on cgroup v${h?.version}); the v1 case above covers kpagecgroup`,
      );
      ctx.skip();
    }
    expect(h?.version).toBe(2);
    expect(census.cgroups.length).toBeGreaterThan(0);
    for (const c of census.cgroups) if (c.path !== null) expect(h?.cgroups.some((g) => g.inode === c.inode)).toBe(true);
  });
});
