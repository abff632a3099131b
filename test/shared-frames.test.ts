// Walks that pass the frames of shared file and shmem pages on to each other
// (native/shared_frames.h): a later mapper's present pages come from
// PAGEMAP_SCAN and an earlier walk's frames instead of its own pagemap.
// Whole recorded chunks a later mapper maps present are added as their runs.
// Checked against the kernel (smaps_rollup) and against the same walks made
// without sharing, figure by figure and mapping by mapping.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyTimings } from '../lib/accounting';
import { processMemory, readMaps, snapshot } from '../lib/index';
import { lookupKpages, pageFeatures } from '../lib/kpage';
import {
  MappingField,
  type NativeSharedFrames,
  type NativeWalk,
  native,
  WALK_WHOLE_SPACE,
  walkStats,
} from '../lib/native';
import { KERNEL_HALF, PAGE_SHIFT } from '../lib/page';
import { measureContext, measureProcess, newTally, reportTarget, settleTargets, walkFlags } from '../lib/pipeline';
import { readSmaps } from '../lib/proc/smaps';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from './helpers/fixture';
import { inKb, kernelKb } from './helpers/oracle';

// On the root filesystem (a block device): its page cache is shared too.
const file = path.join('/var/tmp', `pagewalk-sharers-${process.pid}`);
let fx: Fixture;

beforeAll(async () => {
  fx = await startFixture([file], {}, { bin: fixtureBin('sharers') });
  fx.stop();
});
afterAll(async () => {
  await killAllFixtures();
  fs.rmSync(file, { force: true });
});

/** Walks of the given pids made one after the other (in that order), settled together. */
function walkAll(pids: number[], wholeSpace: boolean, frames?: NativeSharedFrames) {
  const flags = walkFlags(pageFeatures()) | (wholeSpace ? WALK_WHOLE_SPACE : 0);
  const walks: NativeWalk[] = [];
  for (const pid of pids) {
    let ranges: Float64Array;
    if (wholeSpace) {
      ranges = new Float64Array([0, native.wholeSpaceEndPage()]);
    } else {
      const maps = readMaps(pid).filter((m) => m.start < KERNEL_HALF);
      ranges = new Float64Array(maps.flatMap((m) => [Number(m.start >> PAGE_SHIFT), Number(m.end >> PAGE_SHIFT)]));
    }
    const walk = new native.Walk(pid, ranges, flags, 0, 0, frames);
    walk.run();
    walks.push(walk);
  }
  const tally = newTally();
  for (const w of walks) tally.add(w);
  tally.resolve();
  const figures = walks.map((w) => {
    const out = new BigUint64Array(w.mappings() * native.mappingFields);
    w.figures(out);
    return out;
  });
  const shared = walks.map((w) => walkStats(w).sharedFramePages);
  const blocks = walks.map((w) => walkStats(w).sharedBlockPages);
  tally.release();
  return { figures, shared, blocks };
}

/**
 * The [vdso] pages are mapped by every process of the machine, so their
 * mapcounts (and every sharer's PSS) move while other processes start and
 * exit: a comparison of two readings is made again, up to three times, until
 * it holds. A fault of the sharing path holds in every attempt.
 */
async function untilStill<T>(attempt: () => T | Promise<T>, holds: (r: T) => boolean): Promise<T> {
  let r = await attempt();
  for (let i = 1; i < 3 && !holds(r); i++) r = await attempt();
  return r;
}

const same = (a: unknown, b: unknown) =>
  JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? `${v}` : v)) ===
  JSON.stringify(b, (_, v) => (typeof v === 'bigint' ? `${v}` : v));

/** A snapshot and the kernel's figures of every process, read just after. */
async function snapshotAndKernel(pids: number[], mappings: boolean) {
  const s = await snapshot({ pids, concurrency: 2, mappings });
  const kernel = new Map(s.processes.map((p) => [p.pid, kernelKb(p.pid)]));
  const ours = new Map(s.processes.map((p) => [p.pid, inKb(p)]));
  return { s, kernel, ours };
}

describe('shared frames', () => {
  for (const wholeSpace of [true, false]) {
    it(`give the same figures as reading every pagemap (${wholeSpace ? 'whole-space' : 'per-mapping'} walks)`, async () => {
      const { frames, plain, sharing } = await untilStill(
        () => {
          const frames = new native.SharedFrames();
          return { frames, plain: walkAll(fx.pids, wholeSpace), sharing: walkAll(fx.pids, wholeSpace, frames) };
        },
        (r) =>
          same(
            r.plain.figures.map((f) => [...f]),
            r.sharing.figures.map((f) => [...f]),
          ),
      );
      expect(plain.shared.every((n) => n === 0)).toBe(true);
      // The parent walks first: of its two mappings of the memfd, the one
      // walked second finds the 1024 pages they have in common read. A
      // whole-space walk cuts its address space into chunks (on a grid of
      // 16K or 2K entries, and where scans stop) that its two threads take
      // as they come: the thread reading the second mapping may get there
      // before the other has read the first, and a chunk mostly unknown is
      // read, so there it takes anything from none to all of the 1024.
      // Every child then finds most of its shared pages read: 2048 + 1024 /
      // (k + 2) of anon, 1536 of memfd.
      if (wholeSpace) {
        expect(sharing.shared[0]).toBeLessThanOrEqual(1024);
      } else {
        expect(sharing.shared[0]).toBe(1024);
      }
      for (let k = 1; k < fx.pids.length; k++) expect(sharing.shared[k]).toBeGreaterThan(3000);
      // Most of a child's shared pages lie in whole 512-page chunks its
      // parent's walk recorded: those are added as the chunk's runs.
      for (let k = 1; k < fx.pids.length; k++) {
        expect(sharing.blocks[k]).toBeGreaterThan(0);
        expect(sharing.blocks[k] % 512).toBe(0);
        expect(sharing.blocks[k]).toBeLessThanOrEqual(sharing.shared[k]);
      }
      expect(plain.blocks.every((n) => n === 0)).toBe(true);
      expect(frames.bytes()).toBeGreaterThan(0);
      for (let i = 0; i < fx.pids.length; i++) {
        expect({ pid: fx.pids[i], figures: [...sharing.figures[i]] }).toEqual({
          pid: fx.pids[i],
          figures: [...plain.figures[i]],
        });
        let rss = 0n;
        for (let f = MappingField.RssPages; f < sharing.figures[i].length; f += native.mappingFields)
          rss += sharing.figures[i][f];
        expect(rss).toBeGreaterThan(4096n);
      }
      frames.release();
      expect(frames.bytes()).toBe(0);
    });
  }

  it('snapshot() equals smaps_rollup for every sharer, whichever walks first', async () => {
    for (const pids of [fx.pids, [...fx.pids].reverse()]) {
      const { s, kernel, ours } = await untilStill(
        () => snapshotAndKernel(pids, false),
        (r) => same([...r.ours], [...r.kernel]),
      );
      expect(s.processes.map((p) => p.pid).sort()).toEqual([...fx.pids].sort());
      for (const p of s.processes) {
        expect(p.source).toBe('pagemap');
        expect({ pid: p.pid, ...ours.get(p.pid) }).toEqual({ pid: p.pid, ...kernel.get(p.pid) });
      }
    }
  });

  it("a snapshot's group of every process has the same figures with and without sharing", async () => {
    // With shared frames the tally counts each frame's mappings once for the
    // stale-frame check, and the scope takes them from there; without, it
    // counts them itself.
    const scopeOf = async (share: boolean) => {
      if (share) delete process.env.PAGEWALK_SHARE_FRAMES;
      else process.env.PAGEWALK_SHARE_FRAMES = '0';
      try {
        const s = await snapshot({ pids: fx.pids, groups: [{ name: 'family', match: fx.pids }] });
        return { pids: s.processes.map((p) => p.pid), scope: s.scope, family: s.groups[0] };
      } finally {
        delete process.env.PAGEWALK_SHARE_FRAMES;
      }
    };
    const figures = (g: { only: number | null; sharedOutside: number | null; distinct: number | null }) => [
      g.only,
      g.sharedOutside,
      g.distinct,
    ];
    const r = await untilStill(
      async () => ({ sharing: await scopeOf(true), plain: await scopeOf(false) }),
      (x) => same(figures(x.sharing.scope), figures(x.plain.scope)),
    );
    expect(r.sharing.pids).toEqual(r.plain.pids);
    expect(figures(r.sharing.scope)).toEqual(figures(r.plain.scope));
    // The scope is every process, and so is the family: the same figures
    // whichever way they were counted.
    expect(figures(r.sharing.family)).toEqual(figures(r.sharing.scope));
    expect(r.sharing.scope.distinct).toBeGreaterThan(0);
  });

  it('per-mapping figures equal the kernel smaps of each shared mapping', async () => {
    const { s, kernel, ours } = await untilStill(
      () => snapshotAndKernel(fx.pids, true),
      (r) => same([...r.ours], [...r.kernel]),
    );
    let sharedMappings = 0;
    for (const p of s.processes) {
      expect({ pid: p.pid, ...ours.get(p.pid) }).toEqual({ pid: p.pid, ...kernel.get(p.pid) });
      const smaps = new Map(readSmaps(p.pid).map((m) => [m.start, m.fields] as const));
      // The fixture's shared mappings: no page of theirs is mapped outside the family.
      for (const m of p.mappings ?? []) {
        const k = smaps.get(m.mapping.start);
        if (!k || !m.mapping.shared) continue;
        sharedMappings++;
        expect({ start: m.mapping.start, rss: m.rss / 1024, pss: Math.floor(m.pss / 1024) }).toEqual({
          start: m.mapping.start,
          rss: k.Rss,
          pss: k.Pss,
        });
      }
    }
    // anon, memfd and the file in all five, memfdAgain in all five.
    expect(sharedMappings).toBe(5 * 4);
  });

  it('processMemory() of a process mapping one object twice equals smaps_rollup', async () => {
    expect(fx.regions.memfdAgain.pages).toBe(1024);
    const r = await untilStill(
      async () => {
        const ours = inKb(await processMemory(fx.pid));
        return { ours, kernel: kernelKb(fx.pid) };
      },
      (x) => same(x.ours, x.kernel),
    );
    expect(r.ours).toEqual(r.kernel);
  });
});

/** churn sharedfile: maps a file shared and reads every page, again at each touch(). */
async function startFileMapper(file: string, pages: number) {
  const child: ChildProcess = spawn(fixtureBin('churn'), ['sharedfile', file, String(pages)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error('churn sharedfile exited');
    return r.value as string;
  };
  expect(await next()).toBe('ready');
  return {
    pid: child.pid as number,
    touch: async () => {
      child.stdin!.write('touch\n');
      expect(await next()).toBe('touched');
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('stale shared frames', () => {
  it('a file truncated and refilled between two walks: the later one is measured again, equal to smaps_rollup', async () => {
    // Two processes map the same 4 MiB of a file on a block device. A is
    // walked (its frames recorded). Then, in one process on one CPU, the
    // file is truncated (the kernel unmaps and frees its pages), 8 MiB of
    // another file are written (their page cache takes the frames just
    // freed: the allocator hands them out again first) and the file is
    // written again; B faults in its new pages. B is walked with the same
    // shared frames, as a snapshot walks one process after another: its
    // present pages are new frames, not those A's walk recorded.
    const pages = 1024;
    const stale = path.join('/var/tmp', `pagewalk-stale-${process.pid}`);
    const scratch = `${stale}-scratch`;
    fs.writeFileSync(stale, Buffer.alloc(pages * 4096, 1));
    const a = await startFileMapper(stale, pages);
    const b = await startFileMapper(stale, pages);
    try {
      const ctx = measureContext({});
      const timings = emptyTimings();
      const first = await measureProcess(a.pid, ctx, timings);
      execFileSync('taskset', [
        '-c',
        '0',
        'sh',
        '-c',
        'truncate -s 0 "$0" && dd if=/dev/zero of="$1" bs=1M count=8 status=none && dd if=/dev/zero of="$0" bs=1M count=4 status=none',
        stale,
        scratch,
      ]);
      await b.touch();
      process.kill(a.pid, 'SIGSTOP');
      process.kill(b.pid, 'SIGSTOP');
      const second = await measureProcess(b.pid, ctx, timings);
      // B did take A's recorded frames, and some of those are mapped by
      // nobody now: the case in which they would make B's figures wrong.
      expect(walkStats(second.t.walk).sharedFramePages).toBeGreaterThan(pages / 2);
      const recorded = new BigUint64Array(walkStats(first.t.walk).pendingPfns);
      first.t.walk.pendingPfns(recorded);
      const unmapped = lookupKpages(recorded).mapcount.filter((count) => count === 0).length;
      expect(unmapped).toBeGreaterThan(0);
      const settled = await settleTargets([first.t, second.t], ctx, {}, -1, timings);
      const reportB = await reportTarget(settled.targets[1], {}, settled.gap);
      expect({ pid: b.pid, ...inKb(reportB) }).toEqual({ pid: b.pid, ...kernelKb(b.pid) });
      expect(reportB.partial).toBe(false);
      // B was measured again, reading its own pagemap; A was not.
      expect(walkStats(settled.targets[1].walk).sharedFramePages).toBe(0);
      expect(settled.targets[0]).toBe(first.t);
      settled.tally.release();
    } finally {
      await a.kill();
      await b.kill();
      fs.rmSync(stale, { force: true });
      fs.rmSync(scratch, { force: true });
    }
  });
});
