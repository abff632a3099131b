// pagewalk group --by / --config and pagewalk smem --cgroup, on a fixture
// family started inside a memory cgroup the test creates: the command's
// figures against smaps_rollup and the group oracle.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryCgroup, type TestCgroup } from '../helpers/cgroup';
import { eventually, inProcess, ok, root, run } from '../helpers/cli';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from '../helpers/fixture';
import { groupTruth } from '../helpers/group-oracle';

// A copy of the fixture under its own name: no other process shares its program's pages.
const NAME = `pwgrp${process.pid % 100_000}`;
let tmp: string;
let cg: TestCgroup;
let family: Fixture;

beforeAll(async () => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-grouping-'));
  const bin = path.join(tmp, NAME);
  fs.copyFileSync(fixtureBin('layouts'), bin);
  fs.chmodSync(bin, 0o755);
  cg = createMemoryCgroup(`pagewalk-cli-${process.pid}`);
  family = await startFixture(['anon', 'shared', 'cow'], {}, { bin, via: cg.via });
  family.stop();
});
afterAll(async () => {
  await killAllFixtures();
  await cg?.remove();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface JsonGroup {
  group: string;
  pids: number[];
  only: number;
  sharedOutside: number;
  distinct: number;
  pss: number;
}

/** The kernel truncates each process' PSS to the kB; pagewalk adds bytes. */
function expectPssOf(pss: number, rollups: Record<string, Record<string, number>>): void {
  const kb = family.pids.reduce((sum, p) => sum + rollups[p].Pss, 0);
  expect(pss).toBeGreaterThanOrEqual(kb * 1024);
  expect(pss).toBeLessThan((kb + family.pids.length) * 1024);
}

describe('pagewalk group --by and --config', () => {
  it('--by cgroup gives the cgroup of the family its PSS and what it alone holds', async () => {
    await eventually(() => {
      const r = inProcess(['group', '--by', 'cgroup', '--json', '--include-self'], family.pids);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as { groups: JsonGroup[]; units: string };
      expect(out.units).toBe('bytes');
      const g = out.groups.find((x) => x.group === cg.path) as JsonGroup;
      expect(g.pids.sort()).toEqual([...family.pids].sort());
      expectPssOf(g.pss, r.rollups);
      expect(g.only).toBe(groupTruth(family.pids).onlyPages * 4096);
      expect(g.only + g.sharedOutside).toBe(g.distinct);
      // Sorted as smem sorts: the largest PSS last.
      const pss = out.groups.map((x) => x.pss);
      expect(pss).toEqual([...pss].sort((a, b) => a - b));
    });
  });

  it('--by name and --config group the same processes, the config naming them from its template', () => {
    const byName = JSON.parse(ok(['group', '--by', 'name', '--json'])) as { groups: JsonGroup[] };
    const named = byName.groups.find((g) => g.group === NAME) as JsonGroup;
    expect(named.pids.sort()).toEqual([...family.pids].sort());
    const config = path.join(tmp, 'groups.yaml');
    fs.writeFileSync(
      config,
      `groups:\n  - name: "fixture {{match}} of {{user}}"\n    match:\n      name: ^pw(grp)\\d+$\n`,
    );
    const byConfig = JSON.parse(ok(['group', '--config', config, '--json'])) as { groups: JsonGroup[] };
    // Processes no rule matches are left out.
    expect(byConfig.groups.map((g) => g.group)).toEqual([`fixture grp of ${os.userInfo().username}`]);
    expect(byConfig.groups[0].pids.sort()).toEqual(named.pids);
    expect(byConfig.groups[0].only).toBe(named.only);
    const table = ok(['group', '--by', 'exe']);
    expect(table).toMatch(/^Group\s+Procs\s+Unique\s+Outside\s+Distinct\s+PSS\s+USS\s+RSS\s+Swap$/m);
    expect(table).toContain(path.join(tmp, NAME));
  });

  it('refuses mixed or missing ways of grouping, and a bad config, with exit 2', () => {
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(bad, 'groups:\n  - name: x\n    match: { nmae: x }\n');
    for (const [args, message] of [
      [['group'], 'pagewalk: give one of -P REGEX, --by FACT or --config FILE\n'],
      [['group', '-P', 'x', '--by', 'name'], 'pagewalk: give one of -P REGEX, --by FACT or --config FILE\n'],
      [
        ['group', '--by', 'pid'],
        'pagewalk: invalid --by "pid" (known: name exe user cgroup pod container namespace)\n',
      ],
      [['group', '--by', 'user', '-U', 'root'], 'pagewalk: -U goes with -P\n'],
      [
        ['group', '--config', bad],
        `pagewalk: bad config ${bad}:3: unknown key "nmae"; expected name, exe, cmdline, user, cgroup, namespace, pod, container\n`,
      ],
      [['smem', '--cgroup', '-u'], 'pagewalk: -m, -u, --cgroup, --group-by and -w exclude each other\n'],
      [['smem', '--cgroup', '-M', 'libc'], 'pagewalk: --cgroup and -M exclude each other\n'],
    ] as const) {
      const r = run([...args]);
      expect(r.stderr, args.join(' ')).toBe(message);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });
});

describe('pagewalk smem --cgroup', () => {
  it('lists the cgroup with its process count, PSS and unique memory', async () => {
    await eventually(() => {
      const r = inProcess(['smem', '--cgroup', '--json', '-t', '--include-self'], family.pids);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as { cgroups: Record<string, number | string>[]; totals: Record<string, number> };
      const row = out.cgroups.find((c) => c.cgroup === cg.path) as Record<string, number>;
      expect(row.count).toBe(family.pids.length);
      expectPssOf(row.pss, r.rollups);
      expect(row.unique).toBe(groupTruth(family.pids).onlyPages * 4096);
      expect(out.totals.count).toBe(out.cgroups.reduce((a, c) => a + (c.count as number), 0));
    });
    const text = ok(['smem', '--cgroup', '-k']);
    expect(text).toMatch(/^Cgroup\s+Count\s+Swap\s+USS\s+PSS\s+RSS\s+Unique$/m);
    // The table clips names to 48 characters, keeping the end; the JSON above has them whole.
    expect(text).toContain(cg.path.length > 48 ? `…${cg.path.slice(-47)}` : cg.path);
  });
});
