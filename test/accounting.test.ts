import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPids, type ProcessMemory, processMemory, readMaps, readSmaps, snapshot } from '../lib/index';
import { buildDist, haveTool, repoRoot } from './helpers/dist';
import { type Fixture, fixtureBin, killAllFixtures, startFixture, waitFor } from './helpers/fixture';
import { groupTruth } from './helpers/group-oracle';
import { kernel, skipUnless, zeroPageRegions } from './helpers/kernel';
import { inKb, kernelKb, rollup, swapOn } from './helpers/oracle';
import { startProbe, stopProbe } from './helpers/probe';

let fx: Fixture;
beforeAll(async () => {
  // Isolated (see privateLayouts()): compared to the kB with smaps_rollup,
  // and a dynamically linked family's share of libc moves on a busy machine.
  fx = await startFixture(['all'], {}, { isolated: true });
  fx.stop();
});
afterAll(killAllFixtures);

describe('processMemory() equals smaps_rollup to the kB', () => {
  it('for every process of the fixture family (anon, file, zero page, shared, cow, swap, swapped shmem, THP, guard)', async () => {
    for (const pid of fx.pids) {
      const r = await processMemory(pid);
      expect(r.source).toBe('pagemap');
      expect(r.pfnsVisible).toBe(true);
      expect(inKb(r)).toEqual(kernelKb(pid));
    }
  });

  it('reports the fixture ground truth: shared region divided by three, swapped shmem in Swap', async () => {
    const r = await processMemory(fx.pid, { mappings: true });
    const shared = r.mappings?.find((m) => m.mapping.start === fx.regions.shared.start);
    expect(shared).toBeDefined();
    expect(shared?.rss).toBe(32 * 4096);
    expect(shared?.shared).toBe(32 * 4096);
    expect(shared?.pssFixed).toBe(32n * ((4096n << 12n) / 3n));
    if (swapOn() && fx.regions.swappedShared.pageout === 1) {
      const s = r.mappings?.find((m) => m.mapping.start === fx.regions.swappedShared.start);
      // Invisible to pagemap: found with cachestat (before 6.5, the total comes from smaps_rollup).
      if (kernel().cachestat) expect(s?.swap).toBe(64 * 4096);
      else console.log(`not checked on ${kernel().release}: swapped shmem per mapping (no cachestat)`);
      expect(s?.pages.swapped).toBe(0);
      // Private anonymous neighbours may merge into one VMA: find the one holding it.
      const sw = r.mappings?.find(
        (m) => m.mapping.start <= fx.regions.swapped.start && m.mapping.end > fx.regions.swapped.start,
      );
      expect(sw?.pages.swapped).toBe(64);
    }
    // The zero page wherever this kernel maps it (private anonymous
    // neighbours may merge into one VMA: take the one holding the region).
    const holding = (start: bigint) => r.mappings?.find((m) => m.mapping.start <= start && m.mapping.end > start);
    const zeroPages = zeroPageRegions();
    for (const name of zeroPages) expect(holding(fx.regions[name].start)?.pages.zero).toBeGreaterThanOrEqual(32);
    if (kernel().readFault === 'own page') {
      // Read faults gave pages of their own: anonymous, resident, in Rss.
      const zero = holding(fx.regions.zero.start);
      expect(zero?.rss).toBeGreaterThanOrEqual(32 * 4096);
      if (!zeroPages.length) expect(zero?.pages.zero).toBe(0);
    }
  });

  it('per-mapping figures equal each smaps entry to the kB', async () => {
    const r = await processMemory(fx.pid, { mappings: true });
    const smaps = readSmaps(fx.pid);
    for (const entry of smaps) {
      const m = r.mappings?.find((x) => x.mapping.start === entry.start);
      if (!m) {
        expect(entry.start >= 1n << 63n).toBe(true); // [vsyscall]
        continue;
      }
      expect([entry.path, Math.floor(m.rss / 1024), Math.floor(m.pss / 1024), Math.floor(m.swap / 1024)]).toEqual([
        entry.path,
        entry.fields.Rss,
        entry.fields.Pss,
        entry.fields.Swap,
      ]);
    }
  });

  it('for every quiescent process on the machine (smaps_rollup equal before and after)', async () => {
    // Page faults and CPU time (stat fields 10, 12, 14, 15): a process that
    // faulted or ran touched its memory.
    const activity = (pid: number) => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [f[7], f[9], f[11], f[12]].join();
    };
    // The kernel also remakes huge pages of processes that do not run:
    // khugepaged collapses 512 pages into one, splits, migration and swap-out
    // break them up (a CI run saw AnonHugePages differ by one 2 MiB page from
    // a process that neither ran nor faulted). The machine's counters of such
    // events must not move across a reading either.
    const thpEvents = () =>
      fs
        .readFileSync('/proc/vmstat', 'latin1')
        .split('\n')
        .filter((l) =>
          /^thp_(collapse_alloc|split_pmd|split_page|deferred_split_page|migration_success|migration_split|swpout) /.test(
            l,
          ),
        )
        .join();
    // One reading of a process, between two of the kernel's: undefined when
    // it exited, ran or its figures moved meanwhile (busy: not comparable).
    const reading = async (pid: number) => {
      try {
        const [before, active, thp] = [kernelKb(pid), activity(pid), thpEvents()];
        const r = await processMemory(pid);
        const after = kernelKb(pid);
        const still =
          JSON.stringify(before) === JSON.stringify(after) && activity(pid) === active && thpEvents() === thp;
        return still ? { ours: inKb(r), theirs: after } : undefined;
      } catch {
        return undefined; // exited meanwhile
      }
    };
    let compared = 0;
    // Not this process: while it measures itself its walk's own buffers
    // (128 KiB here) are mapped, and gone before and after.
    for (const pid of listPids().filter((p) => p !== process.pid)) {
      // A figure can move and move back between the kernel's two readings
      // (a process elsewhere mapping a library page for a moment): a
      // process that differs is read again, up to ten times. Three were too
      // few on a machine compiling in parallel: a Node 22 run saw a
      // process's Pss_File 1 kB off in all three, each time with the
      // kernel's readings equal around it (processes that start and exit
      // map libc for a moment).
      let last: Awaited<ReturnType<typeof reading>>;
      for (let i = 0; i < 10; i++) {
        const now = await reading(pid);
        if (!now) continue;
        last = now;
        if (JSON.stringify(now.ours) === JSON.stringify(now.theirs)) break;
      }
      if (!last) continue;
      expect({ pid, ...last.ours }).toEqual({ pid, ...last.theirs });
      compared++;
    }
    expect(compared).toBeGreaterThan(3);
  });

  it('a shared mapping of an anonymous inode (an io_uring ring) is no shmem, and the figures equal smaps_rollup', async (ctx) => {
    // It sits on device 0 with an inode, as shmem does, so the swapped-shmem
    // lookup opens it through /proc/PID/map_files, which answers ENXIO:
    // processMemory() of any Node 24 process failed so.
    const ur = await startFixture(['uring', 'anon'], {}, { isolated: true });
    try {
      const ring = ur.regions.uring as { installed?: number; errno?: number };
      skipUnless(ctx, ring.installed === 1, `no io_uring ring could be mapped (errno ${ring.errno})`);
      ur.stop();
      for (const mappings of [false, true]) {
        const r = await processMemory(ur.pid, { mappings });
        expect(r).toMatchObject({ source: 'pagemap', partial: false });
        expect(inKb(r)).toEqual(kernelKb(ur.pid));
      }
    } finally {
      await ur.kill();
    }
  });

  it('VSS read without maps (VmSize and the gate area) equals the sum of the mappings', async () => {
    for (const pid of fx.pids) {
      const whole = await processMemory(pid);
      const perMapping = await processMemory(pid, { mappings: true });
      expect(whole.vss).toBe(readMaps(pid).reduce((a, m) => a + m.size, 0));
      expect(whole.vss).toBe(perMapping.vss);
    }
  });

  it('kernel threads give zeros, not errors', async () => {
    const kthread = listPids().find((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/maps`, 'utf8') === '' && p !== 1;
      } catch {
        return false;
      }
    });
    expect(kthread).toBeDefined();
    const r = await processMemory(kthread as number);
    expect([r.rss, r.pss, r.vss, r.swap]).toEqual([0, 0, 0, 0]);
  });
});

describe('snapshot()', () => {
  it('agrees with per-process calls and finds the group figures of the fixture family', async () => {
    const measure = () =>
      snapshot({
        pids: fx.pids,
        groups: [
          { name: 'family', match: fx.pids },
          { name: 'parent', match: [fx.pid] },
        ],
        matrix: true,
      });
    // The family maps libc, whose PSS moves whenever any process on the
    // machine starts or exits: the two measurements are compared only when
    // the kernel's own figures held still from before the first to after the
    // last, and taken again otherwise.
    let s = await measure();
    let compared = false;
    for (let attempt = 0; attempt < 10 && !compared; attempt++) {
      const before = JSON.stringify(fx.pids.map(kernelKb));
      s = await measure();
      const singles = [];
      for (const p of s.processes) singles.push(await processMemory(p.pid));
      if (JSON.stringify(fx.pids.map(kernelKb)) !== before) continue;
      for (const [k, p] of s.processes.entries()) {
        expect(inKb(p)).toEqual(inKb(singles[k]));
        expect(p.pssFixed).toBe(singles[k].pssFixed);
      }
      compared = true;
    }
    expect(compared, "the fixtures' smaps_rollup never held still over 10 tries").toBe(true);
    expect(s.gone).toEqual([]);
    expect(s.source).toBe('pagemap');
    const family = s.groups[0];
    const truth = groupTruth(fx.pids);
    expect({ only: (family.only as number) / 4096, outside: (family.sharedOutside as number) / 4096 }).toEqual({
      only: truth.onlyPages,
      outside: truth.sharedOutsidePages,
    });
    // Known shape: the family alone holds at least its anonymous, shared and
    // copy-on-write pages (64 + 32 + 32 + 16 child copies).
    expect(family.only).toBeGreaterThanOrEqual((64 + 32 + 32 + 16) * 4096);
    // The parent alone shares the shared and copy-on-write regions with its children.
    const parent = s.groups[1];
    expect(parent.sharedOutside).toBeGreaterThanOrEqual((32 + 32) * 4096);
    const parentTruth = groupTruth([fx.pid]);
    expect((parent.only as number) / 4096).toBe(parentTruth.onlyPages);
    // Matrix: the parent and each child share at least the shared region.
    const n = s.matrix?.pids.length ?? 0;
    const i = s.matrix?.pids.indexOf(fx.pid) ?? -1;
    const j = s.matrix?.pids.indexOf(fx.children[1]) ?? -1;
    expect(n).toBe(3);
    expect(s.matrix?.bytes[i * n + j]).toBeGreaterThanOrEqual((32 + 32) * 4096);
    expect(s.scope.only).toBe(family.only);
  });

  it("sums a group's totals like its members' figures: every field, the proportional ones in fixed point", async () => {
    const s = await snapshot({ pids: fx.pids, groups: [{ name: 'family', match: fx.pids }] });
    const t = s.groups[0].totals;
    const members = s.processes.filter((p) => fx.pids.includes(p.pid));
    const fixed = (k: 'pssFixed' | 'pssAnonFixed' | 'pssFileFixed' | 'pssShmemFixed' | 'swapPssFixed') =>
      members.reduce((a, p) => a + p[k], 0n);
    // The family maps anonymous, file and shared memory: none of these may read 0.
    expect(Math.min(t.pssAnon, t.pssFile, t.pssShmem)).toBeGreaterThan(0);
    expect([t.pss, t.pssAnon, t.pssFile, t.pssShmem, t.swapPss]).toEqual(
      (['pssFixed', 'pssAnonFixed', 'pssFileFixed', 'pssShmemFixed', 'swapPssFixed'] as const).map((k) =>
        Number(fixed(k) >> 12n),
      ),
    );
    for (const k of ['rss', 'uss', 'swap', 'anonymous'] as const)
      expect(t[k]).toBe(members.reduce((a, p) => a + p[k], 0));
  });

  it('reports a pid that does not exist as gone and keeps the rest', async () => {
    const s = await snapshot({ pids: [fx.pid, 4_000_000] });
    expect(s.processes.map((p) => p.pid)).toEqual([fx.pid]);
    expect(s.gone).toEqual([expect.objectContaining({ pid: 4_000_000, reason: 'exited' })]);
  });

  it('covers every process of the system with a filter', async () => {
    const s = await snapshot({ filter: (p) => !p.kernelThread });
    expect(s.processes.length).toBeGreaterThan(3);
    expect(s.processes.some((p) => p.pid === fx.pid)).toBe(true);
    expect(s.scope.distinct).toBeGreaterThan(0);
  });
});

describe('timings', () => {
  const phases = ['maps', 'pagemap', 'scan', 'shmemSwap', 'thp', 'kpage', 'settle', 'shape', 'total'] as const;
  it('processMemory() and snapshot() say where their time went', async () => {
    const r = await processMemory(fx.pid);
    const s = await snapshot({ pids: fx.pids });
    for (const t of [r.timings, s.timings]) {
      for (const k of phases) expect(t[k]).toBeGreaterThanOrEqual(0);
      // The fixture shares memory (pending frames) and has mappings to read.
      expect(t.maps).toBeGreaterThan(0);
      expect(t.pagemap).toBeGreaterThan(0);
      expect(t.kpage).toBeGreaterThan(0);
      expect(t.total).toBeGreaterThanOrEqual(t.walks + t.kpage + t.shape);
    }
    expect(s.timings.total).toBe(s.elapsedMs);
    // Per-process phases of a snapshot add up to its own.
    const sum = s.processes.reduce((a, p) => a + p.timings.pagemap, 0);
    expect(sum).toBeCloseTo(s.timings.pagemap, 6);
  });

  it('and what CPU time they took, every thread of theirs together', async () => {
    const r = await processMemory(fx.pid);
    const s = await snapshot({ pids: fx.pids });
    // No thread can use more than its wall time, and they run on at most
    // every CPU of the machine at once (+1 ms: the clocks' granularity).
    for (const t of [r.timings, s.timings]) {
      expect(t.cpu).toBeGreaterThan(0);
      expect(t.cpu).toBeLessThanOrEqual(t.total * os.availableParallelism() + 1);
    }
    // The walks' threads are part of the snapshot's bill.
    const walks = s.processes.reduce((a, p) => a + p.timings.cpu, 0);
    expect(walks).toBeGreaterThan(0);
    expect(walks).toBeLessThanOrEqual(s.timings.cpu);
  });
});

describe('lock pauses for a running process', () => {
  // Pausing after every call: the walks of these small processes pause too.
  const everyCall = { holdMicros: 1, pauseMicros: 1 };
  let running: Fixture;
  // Its main thread spins: runnable whenever a walk looks, but never on the
  // mmap lock. Its count of times run (schedstat) stays put, so the walk
  // pauses for it at most once a millisecond (lock_pacing.h): a walk shorter
  // than that may not pause at all.
  let busy: Fixture;
  // Its main thread maps and unmaps in a loop: it waits for the mmap lock
  // whenever a walk holds it, and is woken and runs again after each
  // release, the evidence the walk pauses on.
  let writer: Fixture;
  beforeAll(async () => {
    // Both linked statically: no library page they map changes its mapcount
    // while the paced walks read them on a busy machine.
    running = await startFixture(['all'], {}, { bin: fixtureBin('layouts-static') });
    busy = await startFixture(['all'], { FIXTURE_BUSY: '1' }, { bin: fixtureBin('layouts-static') });
    writer = await startFixture(['all'], { FIXTURE_BUSY: '2' }, { bin: fixtureBin('layouts-static') });
    if (!haveTool('strace')) console.warn('accounting.test: strace (apt: strace) missing, SCHED_FIFO trace skipped');
  });
  afterAll(async () => {
    await running.kill();
    await busy.kill();
    await writer.kill();
  });

  it('a running process with a thread that computes is measured equal to smaps_rollup', async () => {
    for (const mappings of [false, true]) {
      const r = await processMemory(busy.pid, { lockPauses: everyCall, mappings });
      expect(inKb(r)).toEqual(kernelKb(busy.pid));
    }
    const s = await snapshot({ pids: busy.pids, lockPauses: everyCall });
    for (const p of s.processes) expect(inKb(p)).toEqual(kernelKb(p.pid));
  });

  it('a running process whose thread maps and unmaps is measured equal to smaps_rollup, and the walk paused', async () => {
    for (const mappings of [false, true]) {
      const r = await processMemory(writer.pid, { lockPauses: everyCall, mappings });
      expect(inKb(r)).toEqual(kernelKb(writer.pid));
      expect(r.timings.paused).toBeGreaterThan(0);
    }
    const s = await snapshot({ pids: writer.pids, lockPauses: everyCall });
    expect(s.timings.paused).toBeGreaterThan(0);
    for (const p of s.processes) expect(inKb(p)).toEqual(kernelKb(p.pid));
  });

  it('a running process whose threads all sleep is measured equal to smaps_rollup without pauses', async () => {
    // Every thread sleeps in pause(): none can be waiting for the mmap lock
    // (lock_pacing.h), so the walk never pauses, however short the hold.
    for (const mappings of [false, true]) {
      const r = await processMemory(running.pid, { lockPauses: everyCall, mappings });
      expect(inKb(r)).toEqual(kernelKb(running.pid));
      expect(r.timings.paused).toBe(0);
    }
    const s = await snapshot({ pids: running.pids, lockPauses: everyCall });
    expect(s.timings.paused).toBe(0);
    for (const p of s.processes) expect(inKb(p)).toEqual(kernelKb(p.pid));
  });

  it.runIf(haveTool('strace'))(
    'between pauses one walking thread runs SCHED_FIFO, and it is put back at its own policy each time (strace)',
    async () => {
      // 512 MiB resident and running, its thread busy: a paced walk. The
      // raised thread preempts whatever shares its CPU (this process's own
      // threads looking at it included), so the policy changes are read
      // from a trace of a probe process's system calls instead.
      const big = await startFixture(['anon'], { FIXTURE_ANON_PAGES: String(128 * 1024), FIXTURE_BUSY: '1' });
      buildDist();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-sched-'));
      try {
        const traced = async (options: object) => {
          const log = path.join(dir, `trace-${JSON.stringify(options).length}.log`);
          const probe = await startProbe(
            ['strace', '-f', '-qq', '-e', 'trace=sched_setscheduler', '-o', log, '--'],
            options,
            [big.pid],
          );
          try {
            const out = await probe.go();
            const lines = fs.readFileSync(log, 'utf8').split('\n');
            // SCHED_FIFO | SCHED_RESET_ON_FORK, priority 1, on the calling thread;
            // back to SCHED_OTHER by thread id.
            const raises = lines.filter((l) =>
              /sched_setscheduler\(0, (0x40000001|SCHED_FIFO\|SCHED_RESET_ON_FORK)\b.*\[1\]\) = 0/.test(l),
            );
            const restores = lines.filter((l) => /sched_setscheduler\(\d+, SCHED_OTHER, \[0\]\) = 0/.test(l));
            return { out, raises, restores };
          } finally {
            await stopProbe(probe);
          }
        };
        const paced = await traced({});
        expect(paced.out.memory[0].timings.paused).toBeGreaterThan(0);
        expect(paced.raises.length).toBeGreaterThan(0);
        // Every raised stretch ends at the thread's own policy again.
        expect(paced.restores.length).toBe(paced.raises.length);
        // lockPauses: false leaves the priority alone.
        const unpaced = await traced({ lockPauses: false });
        expect(unpaced.raises).toEqual([]);
        expect(unpaced.restores).toEqual([]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        await big.kill();
      }
    },
  );

  it('a stopped process, or lockPauses: false, is walked without pauses', async () => {
    expect((await processMemory(fx.pid, { lockPauses: everyCall })).timings.paused).toBe(0);
    expect((await snapshot({ pids: fx.pids, lockPauses: everyCall })).timings.paused).toBe(0);
    expect((await processMemory(running.pid, { lockPauses: false })).timings.paused).toBe(0);
  });
});

describe('KSM', () => {
  const ksm = '/sys/kernel/mm/ksm';
  let saved: Record<string, string> = {};
  let kf: Fixture | undefined;
  beforeAll(() => {
    if (!kernel().ksm) return;
    for (const k of ['run', 'pages_to_scan', 'sleep_millisecs'])
      saved[k] = fs.readFileSync(`${ksm}/${k}`, 'utf8').trim();
  });
  afterAll(async () => {
    await kf?.kill();
    if (!saved.run) return;
    // Unmerge and stop, then restore the tunables exactly as found.
    fs.writeFileSync(`${ksm}/run`, '2');
    for (const k of ['pages_to_scan', 'sleep_millisecs']) fs.writeFileSync(`${ksm}/${k}`, saved[k]);
    fs.writeFileSync(`${ksm}/run`, saved.run);
    saved = {};
  });

  it('merged pages count in KSM and PSS exactly as the kernel counts them', async (ctx) => {
    skipUnless(ctx, kernel().ksm, `no KSM (madvise MADV_MERGEABLE errno ${kernel().raw.madviseMergeableErrno})`);
    // A private static copy without its vdso (see privateLayouts()): the
    // dynamically linked fixture's share of libc moved with every process
    // starting or exiting elsewhere, once across a kB between our walk and
    // the kernel's rollup (Pss 247 kB against 246, on a busy machine).
    kf = await startFixture(['ksm'], {}, { isolated: true });
    fs.writeFileSync(`${ksm}/pages_to_scan`, '10000');
    fs.writeFileSync(`${ksm}/sleep_millisecs`, '10');
    fs.writeFileSync(`${ksm}/run`, '1');
    const merged = await waitFor(() => (rollup(kf!.pid).KSM ?? 0) >= 128 * 4, 30_000);
    expect(merged).toBe(true);
    kf.stop();
    // ksmd stopped, the pages left merged: nothing rewrites the fixture's
    // page tables while it is compared.
    fs.writeFileSync(`${ksm}/run`, '0');
    // Compared while the kernel's own figures hold still across our walk
    // (the vdso's share, or a page reclaimed, can still move them).
    let last: { ours: Record<string, number>; theirs: Record<string, number>; ksm: number } | undefined;
    for (let i = 0; i < 10; i++) {
      const before = kernelKb(kf.pid);
      const r = await processMemory(kf.pid);
      const after = kernelKb(kf.pid);
      if (JSON.stringify(before) !== JSON.stringify(after)) continue; // moved meanwhile: not comparable
      last = { ours: inKb(r), theirs: after, ksm: r.ksm };
      if (JSON.stringify(last.ours) === JSON.stringify(after)) break;
    }
    expect(last, "the kernel's figures never held still across a walk").toBeDefined();
    expect(last?.ours).toEqual(last?.theirs);
    expect(last?.ksm).toBe(128 * 4096);
  });

  it('KSM counters that cannot be read count as merged pages may exist: the merged pages are still found', async (ctx) => {
    skipUnless(ctx, kernel().ksm, `no KSM (madvise MADV_MERGEABLE errno ${kernel().raw.madviseMergeableErrno})`);
    const pid = kf?.pid as number;
    expect(rollup(pid).KSM).toBe(128 * 4);
    // A mount namespace of its own where /sys/kernel/mm/ksm is an empty
    // tmpfs, as in a container with /sys masked: unreadable counters used to
    // read as "KSM off", and the walk then looked no anonymous page up.
    buildDist();
    const script = `
      const pw = require(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))});
      pw.processMemory(${pid}).then((r) => {
        const bigints = (_key, v) => (typeof v === 'bigint' ? String(v) : v);
        process.stdout.write(JSON.stringify({ ksmActive: pw.pageFeatures().ksmActive, figures: r }, bigints));
      });`;
    const masked = (): { ksmActive: boolean; figures: ProcessMemory } =>
      JSON.parse(
        execFileSync(
          'unshare',
          [
            '--mount',
            'sh',
            '-c',
            'mount -t tmpfs none /sys/kernel/mm/ksm && exec "$0" -e "$1"',
            process.execPath,
            script,
          ],
          { encoding: 'utf8' },
        ),
      );
    let last: { ours: Record<string, number>; theirs: Record<string, number>; ksm: number } | undefined;
    for (let i = 0; i < 10; i++) {
      const before = kernelKb(pid);
      const r = masked();
      const after = kernelKb(pid);
      expect(r.ksmActive).toBe(true);
      if (JSON.stringify(before) !== JSON.stringify(after)) continue; // moved meanwhile: not comparable
      last = { ours: inKb(r.figures), theirs: after, ksm: r.figures.ksm };
      if (JSON.stringify(last.ours) === JSON.stringify(after)) break;
    }
    expect(last, "the kernel's figures never held still across a walk").toBeDefined();
    expect(last?.ksm).toBe(128 * 4096);
    expect(last?.ours).toEqual(last?.theirs);
  });
});
