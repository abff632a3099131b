// ramCensus(): every page frame of the machine counted once, in one
// category, from /proc/kpageflags, /proc/kpagecount and /proc/kpagecgroup
// (streamed by the addon in bounded slices), then named: processes by group
// (snapshot()), shmem by object, page cache by memory cgroup and file, the
// kernel's share by what /proc/meminfo says of it; and the total reconciled
// with MemTotal. See docs/ram.md for what decides each category.
import * as fs from 'node:fs';
import { checkGrouping, type Grouping } from './groups';
import { kpagePaths } from './kpage';
import { type MemcgHierarchy, readMemcgHierarchy, readMemoryStat } from './memcg';
import { FrameClass, native } from './native';
import { PAGE } from './page';
import { cpuCount } from './pool';
import { type PfnRange, readSystemRam } from './proc/iomem';
import { type Meminfo, readMeminfo } from './proc/meminfo';
import { readZoneinfo, type Zone } from './proc/zoneinfo';
import { findResidentObjects, type ResidentObject } from './ram-objects';
import { type Snapshot, snapshot } from './snapshot';

/** A part of the machine's memory; its children (if any) sum to it exactly. */
export interface RamNode {
  name: string;
  bytes: number;
  /** What decides it: the kernel flags of its frames, or the kernel figure it is taken from. */
  source?: string;
  /** More about it: holders, what a remainder is, how it compares. */
  note?: string;
  /** Processes holding it (shmem objects, files). */
  pids?: number[];
  children?: RamNode[];
}

/** A census figure beside the kernel's own figure for the same thing. */
export interface RamCheck {
  name: string;
  census: number;
  kernel: number;
  /** census - kernel, bytes. */
  difference: number;
}

/** What one memory cgroup is charged for, by kind, from its frames, against its memory.stat. */
export interface CgroupCharge {
  inode: number;
  /** Path in the memory hierarchy; null when no cgroup has that inode now (removed meanwhile). */
  path: string | null;
  version: 1 | 2;
  /** Bytes by kind, counted from the frames charged to this cgroup alone. */
  anon: number;
  file: number;
  shmem: number;
  /** Slab, page tables and other kernel pages the flags show (unflagged ones are not counted). */
  kernel: number;
  total: number;
  /** Its memory.stat against the census (v1: its own figures; v2: its subtree's). */
  checks: RamCheck[];
}

export interface RamCensus {
  /** Bytes of every page frame the kernel describes (max_pfn frames): the categories sum to it. */
  total: number;
  /** The tree: `total` split into the categories, each into its parts. */
  tree: RamNode;
  /** MemTotal, and what lies between it and `total`. */
  reconciliation: {
    memTotal: number;
    /** Frames outside every System RAM range (PCI windows, firmware): not memory. */
    holes: number;
    /** RAM frames (System RAM in /proc/iomem, else the zones' present frames). */
    ram: number;
    /** RAM the kernel kept at boot (ram - MemTotal): its image, struct pages, firmware tables. */
    reservedAtBoot: number;
    /** Lines of the reconciliation, each a census figure against the kernel's. */
    checks: RamCheck[];
  };
  /** Memory cgroups with what each is charged for, largest first. */
  cgroups: CgroupCharge[];
  /**
   * What the census could not place, and where it comes from. `short`: what
   * the kernel's totals claimed beyond the frames without flags (they moved
   * between the frame read and the totals; 0 when they agree).
   */
  unexplained: { bytes: number; ofMemTotal: number; short: number; what: string };
  /** Kernel and build (uname -rv) the census ran on. */
  kernel: string;
  elapsedMs: number;
  /** ms per phase: frames (the frame files), processes (snapshot), names (objects and cgroups). */
  timings: { framesMs: number; processesMs: number; namesMs: number };
  /** Bytes read from the kpage files. */
  bytesRead: number;
}

export interface RamCensusOptions {
  /** How processes are grouped under `processes`. Default 'name'. */
  groupBy?: Grouping;
  /** Split `processes` by group (a snapshot of every process). Default true. */
  processes?: boolean;
  /** A snapshot (with groups) to split `processes` by, instead of taking one. */
  snapshot?: Snapshot;
  /** Name shmem objects and page-cache files. Default true. */
  names?: boolean;
  /** Called as the work proceeds: the phase, and done/total within it. */
  onProgress?: (phase: 'processes' | 'frames' | 'names', done: number, total: number) => void;
}

const CLASS_COUNT = native.frameClasses;
const SLICES = 16;

/** @internal Frame counts as the addon gives them, summed over slices. */
export interface FrameCounts {
  frames: number[];
  perCgroup: Map<number, number[]>;
  framesRead: number;
  bytesRead: number;
}

/** The frame census of the whole PFN space, in slices run side by side on the pool. */
async function countFrames(ram: PfnRange[], endPfn: number, onSlice: (done: number) => void): Promise<FrameCounts> {
  const p = kpagePaths();
  const dir = p.kpageflags.replace(/\/kpageflags$/, '');
  const cgroupPath = fs.existsSync(`${dir}/kpagecgroup`) ? `${dir}/kpagecgroup` : '';
  const ranges = new Float64Array(ram.flatMap((r) => [r.start, r.end]));
  const out: FrameCounts = {
    frames: new Array(CLASS_COUNT).fill(0),
    perCgroup: new Map(),
    framesRead: 0,
    bytesRead: 0,
  };
  const step = Math.ceil(endPfn / SLICES);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < SLICES) {
      const i = next++;
      const first = i * step;
      const end = Math.min(endPfn, first + step);
      if (first >= end) continue;
      const r = await native.ramCensusRange(p.kpageflags, p.kpagecount, cgroupPath, ranges, first, end);
      out.framesRead += r[0];
      out.bytesRead += r[1];
      for (let c = 0; c < CLASS_COUNT; c++) out.frames[c] += r[2 + c];
      for (let o = 2 + CLASS_COUNT; o < r.length; o += 1 + CLASS_COUNT) {
        let row = out.perCgroup.get(r[o]);
        if (!row) out.perCgroup.set(r[o], (row = new Array(CLASS_COUNT).fill(0)));
        for (let c = 0; c < CLASS_COUNT; c++) row[c] += r[o + 1 + c];
      }
      onSlice(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(cpuCount(), 4)) }, worker));
  return out;
}

/** The end of the PFN space: the last RAM frame, else the last zone's. */
function pfnEnd(ram: PfnRange[], zones: Zone[]): number {
  const fromRam = ram.reduce((m, r) => Math.max(m, r.end), 0);
  const fromZones = zones.reduce((m, z) => Math.max(m, z.startPfn + z.spanned), 0);
  return Math.max(fromRam, fromZones);
}

function node(name: string, bytes: number, extra: Partial<RamNode> = {}): RamNode {
  return { name, bytes, ...extra };
}

/** Sorts children largest first (a remainder stays last), recursively. */
function sortTree(n: RamNode): void {
  if (!n.children) return;
  for (const c of n.children) sortTree(c);
  n.children.sort((a, b) => Number(isRemainder(a)) - Number(isRemainder(b)) || b.bytes - a.bytes);
}
function isRemainder(n: RamNode): boolean {
  return n.name.startsWith('(');
}

/**
 * Takes up to `want` from a pool, in order: the parts of a figure that only
 * arithmetic can place (frames without flags are told apart by the kernel's
 * totals alone). Returns what was taken.
 */
function take(pool: { left: number; short: number }, want: number): number {
  const got = Math.max(0, Math.min(pool.left, Math.round(want)));
  pool.left -= got;
  pool.short += Math.max(0, Math.round(want) - got);
  return got;
}

/** Children that hold exactly `total` between them: the named ones (trimmed if they overrun) and a remainder. */
function withRemainder(total: number, named: RamNode[], remainderName: string, remainderNote: string): RamNode[] {
  let left = total;
  const out: RamNode[] = [];
  for (const n of [...named].sort((a, b) => b.bytes - a.bytes)) {
    if (n.bytes <= 0) continue;
    if (n.bytes > left) {
      // The object's pages changed between the frame read and its count.
      n.note = `${n.note ? `${n.note}; ` : ''}counted ${n.bytes} bytes, ${n.bytes - left} more than its category had left`;
      n.bytes = left;
    }
    left -= n.bytes;
    if (n.bytes > 0) out.push(n);
  }
  out.push(node(remainderName, left, { note: remainderNote }));
  return out;
}

function readKernelName(): string {
  try {
    const r = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
    const v = fs.readFileSync('/proc/sys/kernel/version', 'utf8').trim();
    return `${r} ${v}`;
  } catch {
    return 'unknown';
  }
}

function hugetlbFreeBytes(): number {
  let free = 0;
  try {
    for (const d of fs.readdirSync('/sys/kernel/mm/hugepages')) {
      const kb = Number(/hugepages-(\d+)kB/.exec(d)?.[1] ?? 0);
      free += Number(fs.readFileSync(`/sys/kernel/mm/hugepages/${d}/free_hugepages`, 'utf8')) * kb * 1024;
    }
  } catch {
    // no hugetlb support
  }
  return free;
}

function objectNode(o: ResidentObject): RamNode {
  const bytes = (o.cachedPages - o.mappedPages) * PAGE;
  const notes: string[] = [];
  if (o.mappedPages > 0) notes.push(`${o.mappedPages * PAGE} bytes more are mapped (under processes)`);
  if (o.swappedPages > 0) notes.push(`${o.swappedPages * PAGE} bytes in swap`);
  if (o.holders.length > 0) notes.push(`held by ${o.holders.join(' ')}`);
  if (o.viaMincore) notes.push('counted by mincore');
  return node(o.name, bytes, {
    source: o.kind,
    ...(notes.length ? { note: notes.join('; ') } : {}),
    ...(o.holders.length ? { pids: o.holders } : {}),
  });
}

/** The census of every page frame. Needs root (the kpage files). */
export async function ramCensus(options: RamCensusOptions = {}): Promise<RamCensus> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const groupBy = options.groupBy ?? 'name';
  checkGrouping(groupBy, 'groupBy');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new TypeError('onProgress must be a function');
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  // Fail before the snapshot when the frame files cannot be read (not root):
  // Node's own error, with code, errno, syscall and path.
  fs.closeSync(fs.openSync(kpagePaths().kpageflags, 'r'));

  // Processes first: their walk and the frame read are minutes apart at
  // worst, milliseconds here; each figure says which source it is from.
  let snap: Snapshot | undefined;
  const processesStarted = performance.now();
  if (options.snapshot !== undefined) snap = options.snapshot;
  else if (options.processes ?? true) {
    snap = await snapshot({ groupBy, excludeSelf: true, onProgress: (d, t) => progress('processes', d, t) });
  }
  const processesMs = performance.now() - processesStarted;

  let ram: PfnRange[] = [];
  try {
    ram = readSystemRam();
  } catch {
    // unreadable: every frame is RAM
  }
  const zones = readZoneinfo();
  const meminfoBefore = readMeminfo();
  const framesStarted = performance.now();
  const endPfn = pfnEnd(ram, zones);
  const counts = await countFrames(ram, endPfn, (d) => progress('frames', d, SLICES));
  const framesMs = performance.now() - framesStarted;
  const meminfo = readMeminfo();
  const zonesAfter = readZoneinfo();

  const namesStarted = performance.now();
  const objects = (options.names ?? true) ? await findResidentObjects() : [];
  progress('names', 1, 2);
  const hierarchy = readMemcgHierarchy();
  progress('names', 2, 2);
  const namesMs = performance.now() - namesStarted;

  const census = buildCensus({ counts, ram, zones: zonesAfter, meminfo, meminfoBefore, snap, objects, hierarchy });
  return {
    ...census,
    kernel: readKernelName(),
    elapsedMs: performance.now() - started,
    timings: { framesMs, processesMs, namesMs },
    bytesRead: counts.bytesRead,
  };
}

/** @internal */
export interface CensusInputs {
  counts: FrameCounts;
  ram: PfnRange[];
  zones: Zone[];
  meminfo: Meminfo;
  meminfoBefore: Meminfo;
  snap: Snapshot | undefined;
  objects: ResidentObject[];
  hierarchy: MemcgHierarchy | undefined;
}

/** @internal The tree from the frame counts and the kernel's totals: pure arithmetic (tested on made-up counts). */
export function buildCensus(
  inp: CensusInputs,
): Pick<RamCensus, 'total' | 'tree' | 'reconciliation' | 'cgroups' | 'unexplained'> {
  const f = inp.counts.frames.map((n) => n * PAGE);
  const m = inp.meminfo;
  const mi = (k: string) => m[k] ?? 0;
  const total = inp.counts.framesRead * PAGE;
  const memTotal = mi('MemTotal');
  const ramBytes =
    inp.ram.length > 0
      ? inp.ram.reduce((s, r) => s + (r.end - r.start), 0) * PAGE
      : inp.zones.reduce((s, z) => s + z.present, 0) * PAGE;

  // --- Frames without flags are told apart by the kernel's totals alone,
  // taken from them in order: the steadiest figures first, the per-CPU
  // lists (which change by the millisecond) last, and what is left is
  // `unexplained`.
  const unflagged = { left: f[FrameClass.Unflagged], short: 0 };
  const managed = inp.zones.reduce((s, z) => s + z.managed, 0) * PAGE;
  const zoneFree = inp.zones.reduce((s, z) => s + z.freePages, 0) * PAGE;
  // Without /proc/iomem's addresses (hidden from this process) the frames
  // that are not RAM were not told apart one by one: the zones' present
  // frames say how many there are.
  const holesByZones = inp.ram.length === 0 ? take(unflagged, total - ramBytes - f[FrameClass.Hole]) : 0;
  // In MemTotal (and MemFree) but in no zone's managed frames: memory the
  // kernel has not handed to its page allocator (0 on most machines).
  const outsideZones = take(unflagged, memTotal - managed);
  const reservedFlagged = f[FrameClass.Reserved];
  const reservedAtBoot = Math.max(0, ramBytes - memTotal);
  const reservedUnflagged = take(unflagged, reservedAtBoot - reservedFlagged);
  const stacks = take(unflagged, mi('KernelStack'));
  // With CONFIG_VMAP_STACK the stacks are vmalloc areas, counted in VmallocUsed too.
  const vmalloc = take(unflagged, mi('VmallocUsed') - mi('KernelStack'));
  const percpu = take(unflagged, mi('Percpu'));
  const perCpu = take(unflagged, inp.zones.reduce((s, z) => s + z.perCpuPages, 0) * PAGE);

  // --- free: the buddy lists frame by frame, the rest from the totals.
  const free = node('free', f[FrameClass.Buddy] + perCpu + outsideZones, {
    children: [
      node('buddy allocator', f[FrameClass.Buddy], { source: 'KPF_BUDDY (every frame of a free block)' }),
      node('per-CPU lists', perCpu, { source: "zoneinfo pagesets' count (frames without flags)" }),
      node('outside the zone allocators', outsideZones, {
        source: "MemTotal - the zones' managed frames (frames without flags)",
        note: "counted in MemTotal and MemFree, but in no zone's managed frames: memory the kernel has not handed to its page allocator (deferred or hot-added)",
      }),
    ],
  });

  // --- processes: frames some page table maps.
  const mapped = f[FrameClass.MappedAnon] + f[FrameClass.MappedFile] + f[FrameClass.MappedShmem];
  const processChildren: RamNode[] = [];
  if (inp.snap && inp.snap.scope.distinct !== null) {
    const groups = inp.snap.groups
      .filter((g) => (g.only ?? 0) > 0)
      .map((g) =>
        node(`${g.name} (alone)`, g.only ?? 0, {
          source: 'snapshot(): mapped only by the group',
          note: `${g.pids.length} process${g.pids.length === 1 ? '' : 'es'}`,
          pids: g.pids,
        }),
      );
    const alone = groups.reduce((s, g) => s + g.bytes, 0);
    const shared = Math.max(0, (inp.snap.scope.distinct ?? 0) - alone);
    processChildren.push(
      ...withRemainder(
        mapped,
        [
          ...groups,
          node('(shared between groups)', shared, { source: 'snapshot(): mapped by processes of more than one group' }),
        ],
        '(mapped, not seen by the snapshot)',
        'frames mapped when the frames were read but not when the processes were walked (or the other way round), and pages smaps leaves out (driver mappings)',
      ),
    );
  }
  const processes = node('processes', mapped, {
    source: 'kpagecount > 0 (anonymous, file and shmem pages some process maps)',
    note: `anonymous ${f[FrameClass.MappedAnon]}, file ${f[FrameClass.MappedFile]}, shmem ${f[FrameClass.MappedShmem]} bytes`,
    ...(processChildren.length ? { children: processChildren } : {}),
  });

  // --- page cache per memory cgroup, and within each by file.
  const pathOf = new Map<number, string>((inp.hierarchy?.cgroups ?? []).map((c) => [c.inode, c.path]));
  const cgroupName = (ino: number) =>
    ino === 0 ? '(no cgroup)' : (pathOf.get(ino) ?? `(removed cgroup, inode ${ino})`);
  const fileObjects = inp.objects.filter((o) => !o.shmem && o.cachedPages > o.mappedPages);
  // Each file goes to the cgroup of a holder with the most page cache left
  // (a file's pages are charged to whoever read them first: usually one).
  const cacheLeft = new Map<string, number>();
  for (const [ino, row] of inp.counts.perCgroup) cacheLeft.set(cgroupName(ino), row[FrameClass.File] * PAGE);
  const filesOf = new Map<string, RamNode[]>();
  for (const o of fileObjects.sort((a, b) => b.cachedPages - b.mappedPages - (a.cachedPages - a.mappedPages))) {
    const candidates = o.holderCgroups.filter((c) => (cacheLeft.get(c) ?? 0) > 0);
    if (candidates.length === 0) continue;
    const cg = candidates.reduce((a, b) => ((cacheLeft.get(b) ?? 0) > (cacheLeft.get(a) ?? 0) ? b : a));
    const n = objectNode(o);
    cacheLeft.set(cg, (cacheLeft.get(cg) ?? 0) - n.bytes);
    let list = filesOf.get(cg);
    if (!list) filesOf.set(cg, (list = []));
    list.push(n);
  }
  const cacheByCgroup: RamNode[] = [];
  let cacheInCgroups = 0;
  for (const [ino, row] of inp.counts.perCgroup) {
    const bytes = row[FrameClass.File] * PAGE;
    if (bytes === 0) continue;
    cacheInCgroups += bytes;
    const name = cgroupName(ino);
    const files = filesOf.get(name) ?? [];
    cacheByCgroup.push(
      node(name, bytes, {
        source: 'kpagecgroup',
        ...(files.length
          ? {
              children: withRemainder(
                bytes,
                files,
                '(files not found)',
                'page cache of files no process maps or holds open now',
              ),
            }
          : {}),
      }),
    );
  }
  if (f[FrameClass.File] > cacheInCgroups)
    cacheByCgroup.push(node('(no cgroup read)', f[FrameClass.File] - cacheInCgroups));
  const pageCache = node('page-cache', f[FrameClass.File], {
    source: 'unmapped, not KPF_ANON nor KPF_SWAPBACKED, with KPF_LRU or a page-cache state flag',
    children: cacheByCgroup,
  });

  // --- shmem per object.
  const shmemObjects = inp.objects.filter((o) => o.shmem && o.cachedPages > o.mappedPages).map(objectNode);
  const shmem = node('shmem', f[FrameClass.Shmem], {
    source: 'unmapped KPF_SWAPBACKED without KPF_ANON',
    children: withRemainder(
      f[FrameClass.Shmem],
      shmemObjects,
      '(objects not found)',
      'shmem no search reached: tmpfs in other mount namespaces, objects freed meanwhile, pages in transit',
    ),
  });

  const anonUnmapped = node('anon-unmapped', f[FrameClass.SwapCache] + f[FrameClass.AnonUnmapped], {
    source: 'KPF_ANON with kpagecount 0',
    children: [
      node('swap cache', f[FrameClass.SwapCache], {
        source: 'KPF_SWAPCACHE',
        note: 'anonymous pages read back from swap or on their way out, that no process maps',
      }),
      node('other', f[FrameClass.AnonUnmapped], { note: 'being freed, or held by the kernel (pinned for I/O)' }),
    ],
  });

  // --- kernel: what the flags identify frame by frame, then what the
  // kernel's totals say of the frames without flags.
  const slabFrames = f[FrameClass.Slab];
  const slabReclaimable = Math.min(slabFrames, mi('SReclaimable'));
  const kernelChildren: RamNode[] = [
    node('slab reclaimable', slabReclaimable, { source: 'KPF_SLAB, split by SReclaimable' }),
    node('slab unreclaimable', slabFrames - slabReclaimable, { source: 'KPF_SLAB, the rest' }),
    node('page tables', f[FrameClass.PageTable], { source: 'KPF_PGTABLE' }),
    node('reserved (PG_reserved)', reservedFlagged, {
      source: 'PG_reserved (raw bit 32)',
      note: 'the kernel image, boot-time allocations, the zero page',
    }),
    node('reserved at boot, no flag', reservedUnflagged, {
      source: 'RAM - MemTotal - PG_reserved frames (frames without flags)',
      note: 'memory boot kept without marking it: struct pages (memmap) of memory initialised late',
    }),
    node('kernel stacks', stacks, { source: 'KernelStack (frames without flags)' }),
    node('vmalloc', vmalloc, { source: 'VmallocUsed - KernelStack (frames without flags)' }),
    node('percpu', percpu, { source: 'Percpu (frames without flags)' }),
    node('other flagged', f[FrameClass.OtherFlagged], {
      source: 'flags set, none of the above',
      note: 'kernel allocations the flags show only as compound or referenced pages: large kmalloc, drivers, buffers in flight',
    }),
    node('offline', f[FrameClass.Offline], { source: 'KPF_OFFLINE', note: 'ballooned out or offlined' }),
    node('hardware poisoned', f[FrameClass.HwPoison], { source: 'KPF_HWPOISON' }),
  ];
  const kernel = node(
    'kernel',
    kernelChildren.reduce((s, c) => s + c.bytes, 0),
    { children: kernelChildren },
  );

  const hugeFree = Math.min(f[FrameClass.Hugetlb], hugetlbFreeBytes());
  const hugetlb = node('hugetlb', f[FrameClass.Hugetlb], {
    source: 'KPF_HUGE',
    children: [
      node('used', f[FrameClass.Hugetlb] - hugeFree),
      node('free', hugeFree, { source: 'free_hugepages of every size' }),
    ],
  });

  const holes = node('holes', f[FrameClass.Hole] + holesByZones, {
    source: 'outside every System RAM range of /proc/iomem, or KPF_NOPAGE',
    note: 'frame numbers that are not memory (PCI windows, firmware)',
    ...(holesByZones > 0
      ? {
          children: [
            node('no struct page', f[FrameClass.Hole], { source: 'KPF_NOPAGE' }),
            node('not present in any zone', holesByZones, {
              source: "frames - the zones' present frames (no /proc/iomem addresses: frames without flags)",
            }),
          ],
        }
      : {}),
  });

  const unexplainedBytes = unflagged.left;
  const unexplained = node('unexplained', unexplainedBytes, {
    source: 'frames without flags the kernel totals leave unplaced',
    note: 'kernel allocations no total names (drivers, buffers), and what changed between the frame read and the totals',
  });

  const categories = [free, processes, pageCache, shmem, anonUnmapped, kernel, hugetlb, holes, unexplained];
  const tree = node('machine', total, { children: categories });
  sortTree(tree);
  const sum = categories.reduce((s, c) => s + c.bytes, 0);
  if (sum !== total) throw new Error(`census categories sum to ${sum}, not ${total}: a defect`);

  const check = (name: string, census: number, kernelFigure: number): RamCheck => ({
    name,
    census,
    kernel: kernelFigure,
    difference: census - kernelFigure,
  });
  const reconciliation = {
    memTotal,
    holes: holes.bytes,
    ram: ramBytes,
    reservedAtBoot,
    checks: [
      check('census total = MemTotal + reserved at boot + holes', total, memTotal + reservedAtBoot + holes.bytes),
      check('free (buddy + outside the zones) = MemFree', f[FrameClass.Buddy] + outsideZones, mi('MemFree')),
      check("outside the zones = MemFree - the zones' nr_free_pages", outsideZones, mi('MemFree') - zoneFree),
      check("buddy frames = zones' nr_free_pages", f[FrameClass.Buddy], zoneFree),
      check('slab frames = Slab', slabFrames, mi('Slab')),
      check(
        'page tables = PageTables + SecPageTables',
        f[FrameClass.PageTable],
        mi('PageTables') + mi('SecPageTables'),
      ),
      check(
        'mapped anonymous + anon-unmapped = AnonPages + SwapCached',
        f[FrameClass.MappedAnon] + anonUnmapped.bytes,
        mi('AnonPages') + mi('SwapCached'),
      ),
      check(
        'page cache + shmem + mapped file and shmem = Cached + Buffers',
        f[FrameClass.File] + f[FrameClass.Shmem] + f[FrameClass.MappedFile] + f[FrameClass.MappedShmem],
        mi('Cached') + mi('Buffers'),
      ),
      check('shmem + mapped shmem = Shmem', f[FrameClass.Shmem] + f[FrameClass.MappedShmem], mi('Shmem')),
      check('hugetlb = Hugetlb', f[FrameClass.Hugetlb], mi('Hugetlb')),
      check('MemFree before and after the frame read', mi('MemFree'), inp.meminfoBefore.MemFree ?? 0),
    ],
  };

  return {
    total,
    tree,
    reconciliation,
    cgroups: cgroupCharges(inp),
    unexplained: {
      bytes: unexplainedBytes,
      ofMemTotal: memTotal > 0 ? unexplainedBytes / memTotal : 0,
      short: unflagged.short,
      what: `${unexplainedBytes} bytes of frames without any flag, left after memory outside the zone allocators, reserved-at-boot memory, kernel stacks, vmalloc, percpu and the per-CPU lists were placed by the kernel's totals${unflagged.short > 0 ? `; those totals claimed ${unflagged.short} bytes more than there were such frames (the per-CPU lists got less), as memory moved between the frame read and the totals` : ''}`,
    },
  };
}

/** Per memory cgroup: its frames by kind against its memory.stat. */
function cgroupCharges(inp: CensusInputs): CgroupCharge[] {
  const h = inp.hierarchy;
  const byInode = new Map((h?.cgroups ?? []).map((c) => [c.inode, c]));
  const version = h?.version ?? 1;
  const kinds = (row: number[]) => {
    const anon = (row[FrameClass.MappedAnon] + row[FrameClass.SwapCache] + row[FrameClass.AnonUnmapped]) * PAGE;
    const file = (row[FrameClass.MappedFile] + row[FrameClass.File]) * PAGE;
    const shmem = (row[FrameClass.MappedShmem] + row[FrameClass.Shmem]) * PAGE;
    const kernel =
      (row[FrameClass.Slab] + row[FrameClass.PageTable] + row[FrameClass.OtherFlagged] + row[FrameClass.Reserved]) *
      PAGE;
    const total = anon + file + shmem + kernel + (row[FrameClass.Hugetlb] + row[FrameClass.Offline]) * PAGE;
    return { anon, file, shmem, kernel, total, mappedFile: row[FrameClass.MappedFile] * PAGE };
  };
  // v2 counts a cgroup's subtree: sum the rows of every cgroup under it.
  const subtree = (path: string) => {
    const sum = new Array(CLASS_COUNT).fill(0);
    for (const [ino, row] of inp.counts.perCgroup) {
      const p = byInode.get(ino)?.path;
      if (p === undefined) continue;
      if (path === '/' || p === path || p.startsWith(`${path}/`))
        for (let c = 0; c < CLASS_COUNT; c++) sum[c] += row[c];
    }
    return sum;
  };
  const out: CgroupCharge[] = [];
  for (const [ino, row] of inp.counts.perCgroup) {
    const cg = byInode.get(ino);
    const k = kinds(row);
    const checks: RamCheck[] = [];
    const stat = cg ? readMemoryStat(cg.dir) : undefined;
    if (cg && stat) {
      const c = (name: string, census: number, kernelFigure: number | undefined) => {
        if (kernelFigure !== undefined)
          checks.push({ name, census, kernel: kernelFigure, difference: census - kernelFigure });
      };
      if (version === 1) {
        c('anon = rss + swap cache', k.anon, stat.rss !== undefined ? stat.rss + (stat.swapcached ?? 0) : undefined);
        c('file + shmem = cache', k.file + k.shmem, stat.cache);
        c('shmem = shmem', k.shmem, stat.shmem);
        c(
          'mapped file = mapped_file - mapped shmem',
          k.mappedFile,
          stat.mapped_file !== undefined ? stat.mapped_file - row[FrameClass.MappedShmem] * PAGE : undefined,
        );
      } else {
        const t = kinds(subtree(cg.path));
        c('anon (subtree) = anon', t.anon, stat.anon);
        c('file + shmem (subtree) = file', t.file + t.shmem, stat.file);
        c('shmem (subtree) = shmem', t.shmem, stat.shmem);
      }
    }
    const { mappedFile: _, ...charged } = k;
    out.push({ inode: ino, path: cg?.path ?? null, version, ...charged, checks });
  }
  return out.filter((c) => c.total > 0).sort((a, b) => b.total - a.total);
}
