// Per-cgroup figures against the kernel's own accounting of a memory cgroup
// the test creates (a child of this process' own memory cgroup, v1 or v2)
// and removes. Two fixture processes start inside it, so every page they
// fault in is charged to it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMemoryCgroup, snapshot } from '../lib/index';
import { createMemoryCgroup, pagesByCharge, type TestCgroup } from './helpers/cgroup';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from './helpers/fixture';

const ANON_PAGES = 8192; // 32 MiB each: private anonymous memory dominates both processes

let cg: TestCgroup;
let family: Fixture[] = [];
beforeAll(async () => {
  cg = createMemoryCgroup(`pagewalk-test-${process.pid}`);
  const env = { FIXTURE_ANON_PAGES: String(ANON_PAGES) };
  family = [
    await startFixture(['anon'], env, { via: cg.via }),
    await startFixture(['anon', 'zero'], env, { via: cg.via }),
  ];
  for (const f of family) f.stop();
});
afterAll(async () => {
  await killAllFixtures();
  await cg?.remove();
});

describe('snapshot({ groupBy: "cgroup" }) against the kernel accounting of the cgroup', () => {
  it('puts the processes started in the cgroup in one group named after it', async () => {
    const pids = family.map((f) => f.pid);
    for (const pid of pids)
      expect(readMemoryCgroup(pid)).toEqual({ path: cg.path, version: cg.version, name: cg.path });
    const s = await snapshot({ pids: [...pids, process.pid], groupBy: 'cgroup' });
    const group = s.groups.find((g) => g.name === cg.path);
    expect(group?.pids.sort()).toEqual(pids.sort());
    // This test process is in the parent cgroup: a group of its own.
    expect(s.groups.find((g) => g.pids.includes(process.pid))?.name).toBe(readMemoryCgroup(process.pid)?.name);
  });

  it('anonymous memory agrees with memory.stat to within 1%; distinct memory charged here is within the usage', async () => {
    const pids = family.map((f) => f.pid);
    const s = await snapshot({ pids, groupBy: 'cgroup' });
    const group = s.groups.find((g) => g.name === cg.path);
    expect(group).toBeDefined();
    const stat = cg.stat();
    const kernelAnon = cg.version === 1 ? stat.rss : stat.anon;
    const anon = s.processes.reduce((sum, p) => sum + p.anonymous, 0);
    expect(anon).toBeGreaterThanOrEqual(2 * ANON_PAGES * 4096);
    expect(Math.abs(anon - kernelAnon)).toBeLessThanOrEqual(kernelAnon * 0.01);

    // The group's distinct memory also holds the file pages of the program
    // and libc, which other cgroups faulted in first and are charged for:
    // the distinct memory is not below the usage alone, but the part of it
    // charged to this cgroup is.
    const usage = cg.usage();
    const charge = pagesByCharge(pids, cg.inode);
    expect(group?.distinct).toBe((charge.here + charge.elsewhere) * 4096);
    expect(charge.here * 4096).toBeLessThanOrEqual(usage);
    expect(charge.here * 4096).toBeGreaterThanOrEqual(kernelAnon);
    // Every anonymous page is charged here, and what the fixtures alone map
    // is all the group holds apart from the shared file pages.
    expect(group?.only).toBeGreaterThanOrEqual(2 * ANON_PAGES * 4096);
  });
});

describe('snapshot({ groupBy }) by name, exe and user, and cut short', () => {
  it('gives the same figures as the same processes named as a group', async () => {
    const pids = family.map((f) => f.pid);
    const s = await snapshot({
      pids: [...pids, process.pid],
      groupBy: 'name',
      groups: [{ name: 'family', match: pids }],
    });
    const explicit = s.groups[0];
    const byName = s.groups.find((g) => g.name === 'layouts');
    expect(byName?.pids.sort()).toEqual(pids.sort());
    expect({ ...byName, name: 'family' }).toEqual({ ...explicit, pids: byName?.pids });
    expect(explicit.only).toBeGreaterThanOrEqual(2 * ANON_PAGES * 4096);
    const byExe = await snapshot({ pids, groupBy: 'exe' });
    expect(byExe.groups.map((g) => g.name)).toEqual([fixtureBin('layouts')]);
    const byUser = await snapshot({ pids, groupBy: 'user' });
    expect(byUser.groups.map((g) => [g.name, g.only])).toEqual([['root', explicit.only]]);
  });

  it('lists the processes an aborted snapshot did not measure, in the groups they belong to', async () => {
    const pids = family.map((f) => f.pid).sort((a, b) => a - b);
    const s = await snapshot({ pids, groupBy: 'name', signal: AbortSignal.abort() });
    expect(s.processes).toEqual([]);
    expect(s.skipped.map((p) => p.pid)).toEqual(pids);
    expect(s.scope.skipped).toEqual(pids);
    expect(s.groups).toEqual([expect.objectContaining({ name: 'layouts', pids: [], skipped: pids, only: 0 })]);
    await expect(snapshot({ signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(TypeError);
    await expect(snapshot({ groupBy: 'pid' as 'name' })).rejects.toThrow(RangeError);
  });
});
