// pagewalk group against snapshot()'s group accounting.
import { describe, expect, it } from 'vitest';
import { eventually, fx, type InProcess, inProcess, ok, run, SLEEP_MATCH, TAG, useCliFixtures } from '../helpers/cli';

useCliFixtures();

describe('pagewalk group', () => {
  it('gives what the group alone holds, what it shares outside, and its PSS', async () => {
    await eventually(async () => {
      const r = inProcess(['group', '-P', SLEEP_MATCH, '--json'], fx.sleeps, SLEEP_MATCH);
      const out = JSON.parse(r.out);
      const g = r.group as NonNullable<InProcess['group']>;
      expect(out.pids.sort()).toEqual([...fx.sleeps].sort());
      expect(g.pids.sort()).toEqual([...fx.sleeps].sort());
      expect([out.only, out.sharedOutside, out.pss]).toEqual([g.only, g.sharedOutside, g.pss]);
      // Pages the two fx.sleeps share only with each other count in the group's USS, not in their own.
      expect(out.only).toBeGreaterThanOrEqual(out.uss);
      expect(out.only + out.sharedOutside).toBe(out.distinct);
      expect(out.sharedOutside).toBeGreaterThan(0);
    });
    const text = ok(['group', '-P', SLEEP_MATCH]);
    expect(text).toMatch(/^Group USS\s+\d+ kB/m);
    expect(text).toMatch(/^Shared outside\s+\d+ kB/m);
    expect(text).toMatch(/^Sum of PSS\s+\d+ kB/m);
  });

  it('exits 3 when no process matches', () => {
    const r = run(['group', '-P', `^nothing-matches-${TAG}$`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`pagewalk: no process matches /^nothing-matches-${TAG}$/\n`);
  });
});
