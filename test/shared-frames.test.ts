// Walks that pass the frames of shared file and shmem pages on to each other
// (native/shared_frames.h): a later mapper's present pages come from
// PAGEMAP_SCAN and an earlier walk's frames instead of its own pagemap.
// Checked against the kernel (smaps_rollup) and against the same walks made
// without sharing, figure by figure and mapping by mapping.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processMemory, readMaps, snapshot } from '../lib/index';
import { pageFeatures } from '../lib/kpage';
import {
  MappingField,
  type NativeSharedFrames,
  type NativeWalk,
  native,
  WALK_WHOLE_SPACE,
  walkStats,
} from '../lib/native';
import { KERNEL_HALF, PAGE_SHIFT } from '../lib/page';
import { newTally, walkFlags } from '../lib/pipeline';
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
  tally.release();
  return { figures, shared };
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
