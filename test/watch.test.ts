// watch() and the diff module on real processes: the grow fixture adds and
// drops a known number of pages between two snapshots, and the differences
// must say so to the page; processes that start and exit between snapshots
// show as started and exited.
import { afterEach, describe, expect, it } from 'vitest';
import {
  diffGroups,
  diffSamples,
  groupSample,
  type ProcessSample,
  parseRecord,
  type Sample,
  sampleOf,
  snapshot,
  type WatchStep,
  watch,
} from '../lib/index';
import { type Grower, startGrower } from './helpers/grow';

const PAGE = 4096;
const growers: Grower[] = [];

async function grower(): Promise<Grower> {
  const g = await startGrower();
  growers.push(g);
  return g;
}

afterEach(async () => {
  await Promise.all(growers.splice(0).map((g) => g.kill()));
});

function processOf(step: WatchStep, pid: number) {
  const p = step.sincePrevious?.processes.find((c) => c.pid === pid);
  expect(p, `pid ${pid} in the diff`).toBeDefined();
  return p as NonNullable<typeof p>;
}

describe('watch()', () => {
  it('yields successive snapshots and the growth between them, to the page', async () => {
    const g = await grower();
    await g.grow(100);
    const ac = new AbortController();
    const steps: WatchStep[] = [];
    for await (const step of watch({ pids: [g.pid], interval: 0, mappings: true, signal: ac.signal })) {
      steps.push(step);
      if (step.index === 0) await g.grow(300);
      else if (step.index === 1) await g.shrink(120);
      else ac.abort();
    }
    expect(steps.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(steps[0].sincePrevious).toBeNull();
    expect(steps[0].sinceStart.processes.map((p) => p.status)).toEqual(['unchanged']);
    for (const s of steps) {
      expect(s.sample.processes.map((p) => p.pid)).toEqual([g.pid]);
      expect(s.sample.meminfo?.MemTotal).toBeGreaterThan(0);
      expect(Date.parse(s.sample.time)).toBeGreaterThan(0);
    }
    expect(Date.parse(steps[2].sample.time)).toBeGreaterThanOrEqual(Date.parse(steps[1].sample.time));

    // The process's RSS counts each page once whoever else maps it; its
    // <anonymous> mappings are the fixture's alone, so PSS and USS move exactly too.
    // (Its libc PSS moves when other processes map or unmap libc.)
    const grew = processOf(steps[1], g.pid);
    expect(grew.status).toBe('grew');
    expect(grew.delta.rss).toBe(300 * PAGE);
    expect(grew.delta.vss).toBe(0);
    const anon = grew.mappings?.find((m) => m.path === '<anonymous>');
    expect(anon?.delta).toMatchObject({ pss: 300 * PAGE, uss: 300 * PAGE, rss: 300 * PAGE, vss: 0, swap: 0 });
    expect(anon?.status).toBe('grew');
    // Largest change first.
    expect(grew.mappings?.[0].path).toBe('<anonymous>');

    const shrank = processOf(steps[2], g.pid);
    expect(shrank.status).toBe('shrank');
    expect(shrank.delta.rss).toBe(-120 * PAGE);
    expect(shrank.mappings?.find((m) => m.path === '<anonymous>')?.delta).toMatchObject({
      pss: -120 * PAGE,
      uss: -120 * PAGE,
      rss: -120 * PAGE,
    });
    const since = steps[2].sinceStart.processes[0];
    expect(since.delta.rss).toBe(180 * PAGE);
    expect(since.mappings?.find((m) => m.path === '<anonymous>')?.delta.pss).toBe(180 * PAGE);
  });

  it('stops when the signal aborts while it waits for the next snapshot', async () => {
    const g = await grower();
    const ac = new AbortController();
    const seen: number[] = [];
    // An hour between snapshots: the loop ends only if the abort cuts the wait short.
    for await (const step of watch({ pids: [g.pid], interval: 3_600_000, signal: ac.signal, meminfo: false })) {
      seen.push(step.index);
      expect(step.sample.meminfo).toBeUndefined();
      setTimeout(() => ac.abort(), 50);
    }
    expect(seen).toEqual([0]);
  });

  it('takes a callback, awaited before the next snapshot, and stops after count', async () => {
    const g = await grower();
    const rss: number[] = [];
    await watch({ pids: [g.pid], interval: 0, count: 3 }, async (step) => {
      rss.push(step.sample.processes[0].rss);
      await g.grow(50);
    });
    expect(rss).toHaveLength(3);
    expect([rss[1] - rss[0], rss[2] - rss[1]]).toEqual([50 * PAGE, 50 * PAGE]);

    const ac = new AbortController();
    ac.abort();
    let calls = 0;
    await watch({ pids: [g.pid], signal: ac.signal }, () => {
      calls++;
    });
    expect(calls).toBe(0);
  });

  it('keeps going while processes start and exit', async () => {
    const a = await grower();
    const ours = (p: { name: string; ppid: number }) => p.name === 'grow' && p.ppid === process.pid;
    let b: Grower | undefined;
    const steps: WatchStep[] = [];
    for await (const step of watch({ filter: ours, interval: 0, count: 3 })) {
      steps.push(step);
      if (step.index === 0) b = await grower();
      if (step.index === 1) await a.kill();
    }
    const bPid = (b as Grower).pid;
    expect(steps[0].sample.processes.map((p) => p.pid)).toEqual([a.pid]);
    expect(processOf(steps[1], bPid).status).toBe('started');
    expect(processOf(steps[1], a.pid).status).not.toMatch(/started|exited/);
    expect(steps[1].sincePrevious).toMatchObject({ started: 1, exited: 0 });
    const gone = processOf(steps[2], a.pid);
    expect(gone.status).toBe('exited');
    expect(gone.after.rss).toBe(0);
    expect(gone.delta.rss).toBe(-gone.before.rss);
    expect(steps[2].sincePrevious).toMatchObject({ started: 0, exited: 1 });
    expect(steps[2].sinceStart).toMatchObject({ started: 1, exited: 1 });
  });

  it('rejects bad options at the call', () => {
    expect(() => watch({ interval: -1 })).toThrow(RangeError);
    expect(() => watch({ count: 0 })).toThrow(RangeError);
    expect(() => watch({ pids: [0] })).toThrow(RangeError);
    expect(() => watch({ signal: {} as AbortSignal })).toThrow(TypeError);
    expect(() => watch({}, 5 as unknown as () => void)).toThrow(TypeError);
  });
});

function proc(pid: number, startTime: number, pss: number, extra: Partial<ProcessSample> = {}): ProcessSample {
  return {
    pid,
    startTime,
    name: `p${pid}`,
    command: `p${pid}`,
    user: pid % 2 ? 'root' : 'nobody',
    uid: pid % 2 ? 0 : 65534,
    pss,
    uss: pss,
    rss: pss,
    swap: 0,
    vss: 2 * pss,
    ...extra,
  };
}

function sample(time: string, processes: ProcessSample[]): Sample {
  return {
    format: 'pagewalk-sample',
    version: 1,
    time,
    elapsedMs: 1,
    source: 'pagemap',
    observer: 'included',
    processes,
    gone: 0,
  };
}

describe('diffSamples()', () => {
  it('sorts by the largest change and tells a reused pid from the same process', () => {
    const a = sample('2026-01-01T00:00:00.000Z', [proc(10, 5, 1000), proc(11, 5, 5000), proc(12, 5, 100)]);
    const b = sample('2026-01-01T00:00:02.500Z', [proc(10, 5, 4000), proc(11, 5, 4000), proc(12, 9, 100)]);
    const d = diffSamples(a, b);
    expect(d.seconds).toBe(2.5);
    expect(d.processes.map((p) => [p.pid, p.startTime, p.status, p.delta.pss])).toEqual([
      [10, 5, 'grew', 3000],
      [11, 5, 'shrank', -1000],
      // The new pid 12 is larger now than the old one: it comes first among equal changes.
      [12, 9, 'started', 100],
      [12, 5, 'exited', -100],
    ]);
    expect(d.totals.delta.pss).toBe(2000);
    expect([d.started, d.exited]).toEqual([1, 1]);
    expect(d.processes[0].mappings).toBeUndefined();
  });

  it('sorts by another figure when asked, and groups by user', () => {
    const a = sample('2026-01-01T00:00:00Z', [proc(1, 1, 10), proc(2, 1, 10), proc(3, 1, 10)]);
    const b = sample('2026-01-01T00:00:01Z', [proc(1, 1, 10, { swap: 500 }), proc(2, 1, 30), proc(3, 1, 70)]);
    expect(diffSamples(a, b, { sort: 'swap' }).processes[0].pid).toBe(1);
    expect(() => diffSamples(a, b, { sort: 'bogus' as 'pss' })).toThrow(RangeError);
    const groups = diffGroups(groupSample(a, 'user'), groupSample(b, 'user'));
    expect(groups.map((g) => [g.key, g.pidsAfter, g.delta.pss])).toEqual([
      ['root', [1, 3], 60],
      ['nobody', [2], 20],
    ]);
  });

  it('reads records back and names the bad line', () => {
    const a = sample('2026-01-01T00:00:00Z', [proc(1, 1, 10)]);
    expect(parseRecord(`${JSON.stringify(a)}\n\n${JSON.stringify(a)}\n`)).toHaveLength(2);
    expect(() => parseRecord(`${JSON.stringify(a)}\n{"x":1}\n`, 'r.jsonl')).toThrow(
      /r\.jsonl:2: not a pagewalk sample/,
    );
    expect(() => parseRecord('{', 'r.jsonl')).toThrow(/r\.jsonl:1/);
    const bad = { ...a, processes: [{ ...a.processes[0], pss: 'x' }] };
    expect(() => parseRecord(JSON.stringify(bad))).toThrow(/processes\[0\]: pss/);
  });

  it('makes a sample of a real snapshot that survives JSON', async () => {
    const g = await grower();
    await g.grow(10);
    const snap = await snapshot({ pids: [g.pid], mappings: true });
    const s = sampleOf(snap);
    const back = parseRecord(JSON.stringify(s))[0];
    expect(back).toEqual(s);
    const p = back.processes[0];
    expect(p).toMatchObject({ pid: g.pid, name: 'grow', pss: snap.processes[0].pss, rss: snap.processes[0].rss });
    // Per path, the mappings add up to the process ([vsyscall], in VSS, has no pagemap entries).
    const sum = (k: 'rss' | 'uss') => (p.mappings ?? []).reduce((t, m) => t + m[k], 0);
    expect([sum('rss'), sum('uss')]).toEqual([p.rss, p.uss]);
    expect(p.mappings?.find((m) => m.path === '<anonymous>')?.rss).toBeGreaterThanOrEqual(10 * PAGE);
  });
});
