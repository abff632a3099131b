// Missing kernel features, each forced through an environment switch, and
// the fallback each one takes:
//   PAGEWALK_DISABLE_SCAN=1      no PAGEMAP_SCAN (before 6.7): plain reads
//   PAGEWALK_KPAGE_DIR=/nonexistent  kpagecount unreadable: smaps_rollup figures
//   PAGEWALK_NO_SMAPS_ROLLUP=1   no smaps_rollup (before 4.14): smaps summed
//   PAGEWALK_DISABLE_PROCMAP_QUERY=1  no PROCMAP_QUERY (before 6.11): the
//                                shmem candidates from /proc/PID/maps' text
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ProcessMemory,
  processMemory,
  readSmaps,
  readSmapsRollup,
  readSmapsRollupAsync,
  snapshot,
} from '../lib/index';
import { rollupFromSmaps } from '../lib/proc/smaps';
import { buildDist, haveTool } from './helpers/dist';
import { type Fixture, killAllFixtures, startFixture } from './helpers/fixture';
import { inKb, kernelKb } from './helpers/oracle';
import { expectEqualsRollup as expectProbeEqualsRollup, startProbe, stopProbe } from './helpers/probe';

/** Compares with smaps_rollup, retrying while shared pages of other processes move. */
async function expectEqualsRollup(pid: number, measure: () => Promise<ProcessMemory>): Promise<ProcessMemory> {
  let r = await measure();
  for (let i = 0; i < 10 && JSON.stringify(inKb(r)) !== JSON.stringify(kernelKb(pid)); i++) r = await measure();
  expect({ pid, ...inKb(r) }).toEqual({ pid, ...kernelKb(pid) });
  return r;
}

const SWITCHES = [
  'PAGEWALK_DISABLE_SCAN',
  'PAGEWALK_KPAGE_DIR',
  'PAGEWALK_NO_SMAPS_ROLLUP',
  'PAGEWALK_DISABLE_PROCMAP_QUERY',
];

let fx: Fixture;
beforeAll(async () => {
  // Isolated (see privateLayouts()): the snapshots with and without a
  // feature are compared to the byte, at two moments, and a dynamically
  // linked family's share of libc moves between them on a busy machine.
  fx = await startFixture(['all'], {}, { isolated: true });
  fx.stop();
});
afterAll(killAllFixtures);
afterEach(() => {
  for (const k of SWITCHES) delete process.env[k];
});

describe('PAGEMAP_SCAN absent (PAGEWALK_DISABLE_SCAN=1)', () => {
  it('processMemory still equals smaps_rollup for every process of the family', async () => {
    process.env.PAGEWALK_DISABLE_SCAN = '1';
    for (const pid of fx.pids) {
      const r = await expectEqualsRollup(pid, () => processMemory(pid));
      expect(r.source).toBe('pagemap');
    }
  });

  it('snapshot gives the same figures with and without PAGEMAP_SCAN', async () => {
    const withScan = await snapshot({ pids: fx.pids });
    process.env.PAGEWALK_DISABLE_SCAN = '1';
    const without = await snapshot({ pids: fx.pids });
    expect(without.gone).toEqual([]);
    expect(without.processes.map((p) => [p.pid, p.pssFixed, p.rss, p.uss, p.swap])).toEqual(
      withScan.processes.map((p) => [p.pid, p.pssFixed, p.rss, p.uss, p.swap]),
    );
    expect(without.scope.only).toBe(withScan.scope.only);
    for (const p of without.processes) expect(inKb(p)).toEqual(kernelKb(p.pid));
  });
});

describe('PROCMAP_QUERY absent (PAGEWALK_DISABLE_PROCMAP_QUERY=1)', () => {
  it('processMemory still equals smaps_rollup, swapped shmem included', async () => {
    process.env.PAGEWALK_DISABLE_PROCMAP_QUERY = '1';
    for (const pid of fx.pids) {
      const r = await expectEqualsRollup(pid, () => processMemory(pid));
      expect(r.source).toBe('pagemap');
    }
    // The text path found the swapped shmem (invisible to pagemap) itself.
    if (fx.regions.swappedShared?.pageout === 1) {
      const r = await processMemory(fx.pid);
      const walked = await processMemory(fx.pid, { mappings: true });
      const shmem = walked.mappings?.find((m) => m.mapping.start === fx.regions.swappedShared.start);
      expect(shmem?.swap).toBe(64 * 4096);
      expect(r.swap).toBe(walked.swap);
    }
  });
});

describe('kpagecount unreadable (PAGEWALK_KPAGE_DIR=/nonexistent)', () => {
  it('processMemory degrades to smaps_rollup and says so', async () => {
    process.env.PAGEWALK_KPAGE_DIR = '/nonexistent';
    const r = await expectEqualsRollup(fx.pid, () => processMemory(fx.pid, { mappings: true }));
    expect(r.source).toBe('smaps_rollup');
    expect(r.pfnsVisible).toBe(false);
    // Per-mapping figures come from the kernel's own /proc/PID/smaps then:
    // every user-space entry, with its figures, in order.
    const smaps = readSmaps(fx.pid).filter((e) => e.start < 1n << 63n);
    expect(
      r.mappings?.map((m) => [m.mapping.start, m.mapping.path, m.rss / 1024, m.pss / 1024, m.swap / 1024]),
    ).toEqual(smaps.map((e) => [e.start, e.path, e.fields.Rss, e.fields.Pss, e.fields.Swap]));
  });

  it("unprivileged: 'error' throws EPERM naming CAP_SYS_ADMIN", async () => {
    process.env.PAGEWALK_KPAGE_DIR = '/nonexistent';
    const err = await processMemory(fx.pid, { unprivileged: 'error' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EPERM', syscall: expect.any(String), path: `/proc/${fx.pid}/pagemap` });
    expect(err.message).toMatch(/CAP_SYS_ADMIN/);
    await expect(snapshot({ pids: fx.pids, unprivileged: 'error' })).rejects.toMatchObject({ code: 'EPERM' });
  });

  it('snapshot degrades as a whole, every process equal to its smaps_rollup', async () => {
    process.env.PAGEWALK_KPAGE_DIR = '/nonexistent';
    const s = await snapshot({ pids: fx.pids });
    expect(s.source).toBe('smaps_rollup');
    expect(s.gone).toEqual([]);
    for (const p of s.processes) {
      expect(p.source).toBe('smaps_rollup');
      expect(inKb(p)).toEqual(kernelKb(p.pid));
    }
  });
});

describe('smaps_rollup missing (PAGEWALK_NO_SMAPS_ROLLUP=1)', () => {
  it('the rollup summed from smaps equals the real one, Pss within 1 kB per mapping', async () => {
    for (const pid of fx.pids) {
      const real = readSmapsRollup(pid);
      process.env.PAGEWALK_NO_SMAPS_ROLLUP = '1';
      const summed = readSmapsRollup(pid);
      const summedAsync = await readSmapsRollupAsync(pid);
      delete process.env.PAGEWALK_NO_SMAPS_ROLLUP;
      expect(summedAsync).toEqual(summed);
      const mappings = readSmaps(pid).length;
      expect([summed.start, summed.end]).toEqual([real.start, real.end]);
      for (const k of [
        'Rss',
        'Shared_Clean',
        'Shared_Dirty',
        'Private_Clean',
        'Private_Dirty',
        'Anonymous',
        'Swap',
        'KSM',
        'Locked',
        'AnonHugePages',
      ]) {
        expect([k, summed.fields[k]]).toEqual([k, real.fields[k]]);
      }
      for (const k of ['Pss', 'Pss_Dirty', 'SwapPss']) {
        expect(summed.fields[k]).toBeLessThanOrEqual(real.fields[k]);
        expect(summed.fields[k]).toBeGreaterThanOrEqual(real.fields[k] - mappings);
      }
      // The split is estimated per mapping; its sum is the summed Pss.
      expect(summed.fields.Pss_Anon + summed.fields.Pss_File + summed.fields.Pss_Shmem).toBe(summed.fields.Pss);
      expect(Math.abs(summed.fields.Pss_Anon - real.fields.Pss_Anon)).toBeLessThanOrEqual(mappings);
    }
  });

  it('degraded processMemory uses the summed rollup when both are missing', async () => {
    process.env.PAGEWALK_KPAGE_DIR = '/nonexistent';
    process.env.PAGEWALK_NO_SMAPS_ROLLUP = '1';
    const r = await processMemory(fx.pid);
    expect(r.source).toBe('smaps_rollup');
    const k = kernelKb(fx.pid);
    expect(Math.floor(r.rss / 1024)).toBe(k.Rss);
    expect(Math.floor(r.uss / 1024)).toBe(k.Private);
    expect(Math.floor(r.swap / 1024)).toBe(k.Swap);
    expect(k.Pss - Math.floor(r.pss / 1024)).toBeGreaterThanOrEqual(0);
    expect(k.Pss - Math.floor(r.pss / 1024)).toBeLessThanOrEqual(readSmaps(fx.pid).length);
  });

  it('an empty smaps (kernel thread) sums to an empty rollup', () => {
    expect(rollupFromSmaps([])).toMatchObject({
      start: 0n,
      end: 0n,
      fields: expect.objectContaining({ Rss: 0, Pss: 0 }),
    });
  });
});

describe('the switches themselves', () => {
  it('take 1 or 0 (or nothing); any other value is a RangeError naming the switch', async () => {
    for (const name of ['PAGEWALK_DISABLE_SCAN', 'PAGEWALK_DISABLE_PROCMAP_QUERY']) {
      process.env[name] = 'yes';
      await expect(processMemory(fx.pid)).rejects.toThrow(
        new RangeError(`${name} must be 1 (on) or 0 (off), got "yes"`),
      );
      process.env[name] = '0';
      expect(inKb(await processMemory(fx.pid))).toEqual(kernelKb(fx.pid));
      delete process.env[name];
    }
  });
});

describe.runIf(haveTool('strace'))('the switches reach the native walk (strace)', () => {
  // The ioctl numbers strace prints undecoded where it does not know them
  // (_IOWR('f', 16 / 17, ...)), or their names where it does.
  const IOCTLS = {
    PAGEMAP_SCAN: /0x66, 0x10,|PAGEMAP_SCAN/,
    PROCMAP_QUERY: /0x66, 0x11,|PROCMAP_QUERY/,
  };
  const CASES = [
    { env: 'PAGEWALK_DISABLE_SCAN', ioctl: 'PAGEMAP_SCAN' },
    { env: 'PAGEWALK_DISABLE_PROCMAP_QUERY', ioctl: 'PROCMAP_QUERY' },
  ] as const;
  let dir: string;
  beforeAll(() => {
    buildDist();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-strace-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** ioctl calls of the given kind a probe made measuring the family (warm-up included), and its output. */
  async function traced(ioctl: keyof typeof IOCTLS, options: object, env: Record<string, string>) {
    const log = path.join(dir, `trace-${Object.keys(env).join('-')}-${JSON.stringify(options).length}.log`);
    const probe = await startProbe(
      ['strace', '-f', '-qq', '-e', 'trace=ioctl', '-o', log, '--'],
      options,
      fx.pids,
      env,
    );
    try {
      const out = await probe.go();
      const calls = fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((line) => IOCTLS[ioctl].test(line));
      return { out, calls };
    } finally {
      await stopProbe(probe);
    }
  }

  for (const { env, ioctl } of CASES) {
    for (const options of [{}, { mappings: true }]) {
      it(`${env}=1: no ${ioctl} ioctl, figures equal smaps_rollup (${JSON.stringify(options)})`, async () => {
        // Without the switch the library does try the ioctl (whether or not
        // the kernel has it): the trace and the pattern see it.
        const normal = await traced(ioctl, options, {});
        expectProbeEqualsRollup(normal.out, fx.pids);
        expect(normal.calls.length).toBeGreaterThan(0);
        const off = await traced(ioctl, options, { [env]: '1' });
        expectProbeEqualsRollup(off.out, fx.pids);
        expect(off.calls).toEqual([]);
      });
    }
  }
});
