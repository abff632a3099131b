// When the kernel refuses what a walk would like to have: a thread of its
// own (the caller's pids cgroup at its limit) or the real-time priority of
// the walking thread between lock pauses (no CAP_SYS_NICE, RLIMIT_RTPRIO 0).
// Neither fails a measurement or changes a figure; a refused raise is
// reported in timings.unraised. And a kernel whose pages are not the 4 KiB
// pagewalk is verified on: the addon does not load. Each case runs in a
// child process that carries the limit, never in the test runner itself.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMountinfo } from '../lib/proc/mountinfo';
import { buildDist, haveTool, repoRoot } from './helpers/dist';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from './helpers/fixture';
import { expectEqualsRollup, startProbe, stopProbe } from './helpers/probe';

const isRoot = process.getuid?.() === 0;
/** Where a pids controller is mounted (v1, or v2 where children may use it), or why none is. */
function pidsHierarchy(): { dir: string } | { skip: string } {
  const mounts = readMountinfo('self');
  const v1 = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('pids'));
  if (v1) return { dir: v1.mountPoint };
  // Under cgroup v2 a child needs pids enabled in its parent's
  // subtree_control, which is the host's to set: used only where it is.
  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  if (!v2) return { skip: 'no pids cgroup controller mounted' };
  const control = fs.readFileSync(path.join(v2.mountPoint, 'cgroup.subtree_control'), 'utf8');
  if (control.split(/\s+/).includes('pids')) return { dir: v2.mountPoint };
  return {
    skip: `cgroup v2 at ${v2.mountPoint} has no pids controller enabled for its children, and no v1 pids hierarchy is mounted`,
  };
}

let fx: Fixture;
beforeAll(async () => {
  buildDist();
  fx = await startFixture(['all']);
});
afterAll(killAllFixtures);

describe.runIf(isRoot)("a thread refused (the caller's pids cgroup at its limit)", () => {
  const where = pidsHierarchy();
  if ('skip' in where) console.warn(`limits.test: ${where.skip}: the thread-refusal case is skipped`);

  it.runIf('dir' in where)(
    'processMemory and snapshot carry on with the threads they have, equal to smaps_rollup',
    async () => {
      const dir = path.join((where as { dir: string }).dir, `pagewalk-limits-${process.pid}`);
      // 128 MiB resident: processMemory walks it on two threads where it may.
      const big = await startFixture(['anon'], { FIXTURE_ANON_PAGES: String(32 * 1024) });
      const pids = [big.pid, ...fx.pids];
      big.stop();
      fx.stop();
      const probe = await startProbe([], {}, pids);
      fs.mkdirSync(dir);
      try {
        fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(probe.child.pid));
        // Not one task more than the probe has now: every thread a walk, a
        // tally or a kpage read would start is refused (EAGAIN).
        const current = fs.readFileSync(path.join(dir, 'pids.current'), 'utf8').trim();
        fs.writeFileSync(path.join(dir, 'pids.max'), current);
        const out = await probe.go();
        expectEqualsRollup(out, pids);
        // The kernel did refuse threads: the case tested is the fallback.
        const refused = Number(/^max (\d+)/m.exec(fs.readFileSync(path.join(dir, 'pids.events'), 'utf8'))?.[1]);
        expect(refused).toBeGreaterThan(0);
        expect(out.threads).toBe(Number(current));
      } finally {
        await stopProbe(probe);
        await big.kill();
        fx.cont();
        fs.rmdirSync(dir);
      }
    },
  );
});

describe.runIf(isRoot && haveTool('setpriv') && haveTool('prlimit'))(
  'SCHED_FIFO refused (no CAP_SYS_NICE, RLIMIT_RTPRIO 0)',
  () => {
    // Pausing after every call on a running process: every call is due to run raised.
    const options = { lockPauses: { holdMicros: 1, pauseMicros: 1 } };
    // A walk pauses only while a thread of its target may be waiting for the
    // mmap lock (runnable or blocked): this fixture's main thread spins, so it
    // always may. Linked statically: no library page's PSS moves meanwhile.
    let busy: Fixture;
    beforeAll(async () => {
      busy = await startFixture(['all'], { FIXTURE_BUSY: '1' }, { bin: fixtureBin('layouts-static') });
    });
    afterAll(() => busy.kill());

    /** A paced measurement of the busy running fixture by a probe started through `via`: its timings. */
    async function pacedTimings(via: string[]) {
      const probe = await startProbe(via, options, [busy.pid]);
      try {
        const out = await probe.go();
        expectEqualsRollup(out, [busy.pid]);
        return {
          paused: out.memory[0].timings.paused,
          unraised: out.memory[0].timings.unraised,
          snapshotUnraised: out.snapshot?.timings.unraised,
        };
      } finally {
        await stopProbe(probe);
      }
    }

    it('the walk is still exact, and timings.unraised says the raise was refused', async () => {
      const t = await pacedTimings([
        'prlimit',
        '--rtprio=0:0',
        '--',
        'setpriv',
        '--inh-caps=-sys_nice',
        '--bounding-set=-sys_nice',
        '--',
      ]);
      expect(t.paused).toBeGreaterThan(0);
      expect(t.unraised).toBeGreaterThan(0);
      expect(t.snapshotUnraised).toBeGreaterThan(0);
    });

    it('where the kernel allows the raise, timings.unraised is 0', async (ctx) => {
      try {
        execFileSync('chrt', ['-f', '1', 'true'], { stdio: 'ignore' });
      } catch {
        ctx.skip('chrt -f 1 fails here (no real-time time for this cgroup?): no raise can be allowed');
      }
      const t = await pacedTimings([]);
      expect(t.paused).toBeGreaterThan(0);
      expect(t.unraised).toBe(0);
      expect(t.snapshotUnraised).toBe(0);
    });
  },
);

describe('a kernel whose page size is not 4 KiB', () => {
  it('the addon refuses to load, saying why; on this kernel it loads with 4096-byte pages', () => {
    const load = (preload: string[]) =>
      execFileSync(
        process.execPath,
        [
          '-e',
          `try { const p = require(${JSON.stringify(path.join(repoRoot, 'dist', 'page.js'))}); console.log('PAGE', p.PAGE, p.PAGE_SHIFT) } catch (e) { console.log('ERROR', e.message) }`,
        ],
        {
          encoding: 'utf8',
          // Kept beside the sanitizer run's own preload, if any.
          env: { ...process.env, LD_PRELOAD: [process.env.LD_PRELOAD ?? '', ...preload].join(' ').trim() },
        },
      ).trim();
    expect(load([])).toBe(`PAGE 4096 12n`);
    expect(Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }))).toBe(4096);
    // sysconf(_SC_PAGESIZE) says 16384 to the addon alone, as on arm64 with 16 KiB pages.
    expect(load([fixtureBin('page-size-shim.so')])).toBe(
      "ERROR pagewalk supports kernels with 4096-byte pages only; this kernel's page size is 16384 bytes " +
        '(sysconf(_SC_PAGESIZE)), at which its pagemap, kpagecount and kpageflags would be read at the wrong entries',
    );
  });
});
