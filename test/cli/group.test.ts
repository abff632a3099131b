// pagewalk group against snapshot()'s group accounting.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cli,
  execed,
  fx,
  type InProcess,
  inProcess,
  ok,
  run,
  SLEEP_MATCH,
  start,
  TAG,
  useCliFixtures,
} from '../helpers/cli';
import { privateLayouts, startFixture } from '../helpers/fixture';

useCliFixtures();

describe('pagewalk group', () => {
  it('gives what the group alone holds, what it shares outside, and its PSS', async () => {
    // PSS moves whenever a process anywhere maps or unmaps a page the group
    // shares: libc and the sleep binary, for the sleeps, where a busy
    // machine moved the group's PSS between the command's reading and
    // snapshot()'s (258368 against 258526 bytes once, every retry failing).
    // So the figures are compared on a family nothing else touches: a
    // private, statically linked copy of the layouts fixture without a vdso,
    // run as a group (a parent and two children sharing a MAP_SHARED region)
    // and, through a hard link under another name, as one process outside
    // it sharing the program's text.
    const { bin: inside, dir } = privateLayouts(`grp${TAG}`);
    const outside = path.join(dir, `out${TAG}`);
    fs.linkSync(inside, outside);
    const family = await startFixture(['shared'], { FIXTURE_NO_VDSO: '1' }, { bin: inside });
    const other = await startFixture(['anon'], { FIXTURE_NO_VDSO: '1' }, { bin: outside });
    const members = [...family.pids].sort((a, b) => a - b);
    const pids = [...members, other.pid];
    family.stop();
    other.stop();
    try {
      const match = `^grp${TAG}$`;
      const r = inProcess(['group', '-P', match, '--json'], pids, match);
      const out = JSON.parse(r.out);
      const g = r.group as NonNullable<InProcess['group']>;
      expect(out.pids.sort((a: number, b: number) => a - b)).toEqual(members);
      expect(g.pids.sort((a, b) => a - b)).toEqual(members);
      expect([out.only, out.sharedOutside, out.pss]).toEqual([g.only, g.sharedOutside, g.pss]);
      // The members' PSS, each the kernel's (read between the two readings);
      // the group adds them in fixed point and truncates once, to the byte.
      const pss = members.map((p) => r.snap.find((x) => x.pid === p)?.pss ?? Number.NaN);
      expect(pss.map((b) => Math.floor(b / 1024))).toEqual(members.map((p) => r.rollups[p].Pss));
      const summed = pss.reduce((a, b) => a + b, 0);
      expect(out.pss - summed).toBeGreaterThanOrEqual(0);
      expect(out.pss - summed).toBeLessThan(members.length);
      // The region the members share only with each other counts in the group's USS, not in their own.
      expect(out.only).toBeGreaterThanOrEqual(out.uss + 32 * 4096);
      expect(out.only + out.sharedOutside).toBe(out.distinct);
      expect(out.sharedOutside).toBeGreaterThan(0);
    } finally {
      await family.kill();
      await other.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // Processes that share libraries with the whole machine: the same
    // relations within one reading.
    const sleeps = JSON.parse(ok(['group', '-P', SLEEP_MATCH, '--json']));
    expect(sleeps.pids.sort()).toEqual([...fx.sleeps].sort());
    expect(sleeps.only).toBeGreaterThanOrEqual(sleeps.uss);
    expect(sleeps.only + sleeps.sharedOutside).toBe(sleeps.distinct);
    expect(sleeps.sharedOutside).toBeGreaterThan(0);
    const text = ok(['group', '-P', SLEEP_MATCH]);
    expect(text).toMatch(/^Group USS\s+\d+ kB/m);
    expect(text).toMatch(/^Shared outside\s+\d+ kB/m);
    expect(text).toMatch(/^Sum of PSS\s+\d+ kB/m);
  });

  it('a large group: counted by name, its pids wrapped to the terminal, not one long line', async () => {
    const many = [];
    for (let i = 0; i < 20; i++) many.push(start('sleep', [`${Number(TAG) + 1}`]));
    try {
      for (const c of many) await execed(c.pid as number, `sleep ${Number(TAG) + 1}`);
      const pids = many.map((c) => c.pid as number).sort((a, b) => a - b);
      const r = spawnSync(process.execPath, [cli, 'group', '-P', `^sleep ${Number(TAG) + 1}$`], {
        encoding: 'utf8',
        env: { ...process.env, COLUMNS: '60' },
      });
      expect(r.status).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines.find((l) => l.startsWith('Processes'))).toMatch(/^Processes\s+20 sleep x20$/);
      const first = lines.findIndex((l) => l.startsWith('Pids'));
      expect(first).toBeGreaterThan(0);
      const pidLines = [
        lines[first],
        ...lines
          .slice(first + 1)
          .filter((l, i, a) => /^\s+\d[\d ]*$/.test(l) && a.slice(0, i).every((x) => /^\s+\d[\d ]*$/.test(x))),
      ];
      expect(pidLines.length).toBeGreaterThan(1);
      for (const l of pidLines) expect(l.trimEnd().length).toBeLessThanOrEqual(60);
      const listed = pidLines.flatMap((l) => l.replace(/^Pids/, '').trim().split(/\s+/).map(Number));
      expect(listed).toEqual(pids);
    } finally {
      for (const c of many) c.kill('SIGKILL');
    }
  });

  it('exits 3 when no process matches', () => {
    const r = run(['group', '-P', `^nothing-matches-${TAG}$`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`pagewalk: no process matches /^nothing-matches-${TAG}$/\n`);
  });
});
