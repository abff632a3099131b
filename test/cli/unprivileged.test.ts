// The command without privilege: run as nobody (setpriv) against a fixture
// nobody owns, every view answers with the kernel's own figures from
// /proc/PID/smaps and smaps_rollup and says so; group gives its members'
// sums and says that group-unique memory needs CAP_SYS_ADMIN; processes
// nobody may not read are counted and named in one line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DENIED_LINE, fx, type JsonProcess, rollup, run, SLEEP_MATCH, TAG, useCliFixtures } from '../helpers/cli';
import { copyBuiltPackage, haveTool } from '../helpers/dist';
import { fixtureBin } from '../helpers/fixture';
import { killAllProcs, type Proc, startProc } from '../helpers/procs';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const WARNING =
  /^pagewalk: warning: not running as root \(no CAP_SYS_ADMIN\): figures are the kernel's from \/proc\/PID\/smaps_rollup.*CAP_SYS_ADMIN/m;

useCliFixtures();

/** Every Key: N kB field of each smaps entry, by start address (hex). */
function smapsByStart(pid: number): Map<string, { path: string; kb: Record<string, number> }> {
  const out = new Map<string, { path: string; kb: Record<string, number> }>();
  for (const entry of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-)/)) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/m.exec(entry);
    if (!head) continue;
    const kb: Record<string, number> = {};
    for (const m of entry.matchAll(/^(\w+):\s+(\d+) kB$/gm)) kb[m[1]] = Number(m[2]);
    out.set(head[1], { path: head[2], kb });
  }
  return out;
}

/** The pids named in a line of unreadable processes, and the count it gives. */
function denied(stderr: string): { count: number; pids: number[] } {
  const m = DENIED_LINE.exec(stderr);
  if (!m) return { count: 0, pids: [] };
  const pids = [...(m[2] ?? '').matchAll(/\(([\d ]+)\)/g)].flatMap((g) => g[1].split(' ').map(Number));
  return { count: Number(m[1]), pids };
}

describe.runIf(isRoot && haveTool('setpriv'))('every view as nobody', () => {
  let pkg: string;
  let fixture: Proc;
  let family: number[];
  const tag = `nobody${TAG}`;
  const match = `layout[s] .*${tag}$`;
  const asNobody = (args: string[]) =>
    run(
      args,
      ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'],
      path.join(pkg, 'dist', 'cli', 'main.js'),
    );

  beforeAll(async () => {
    // nobody may not be able to enter the checkout: a readable copy.
    pkg = copyBuiltPackage([fixtureBin('layouts')]);
    fixture = await startProc(path.join(pkg, 'layouts'), ['anon', 'shared', 'cow', tag], {
      uid: NOBODY,
      gid: NOBODY,
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', FIXTURE_CHILDREN: '1' },
    });
    const line = JSON.parse(fixture.line) as { pid: number; children: number[] };
    family = [line.pid, ...line.children].sort((a, b) => a - b);
    for (const p of family) process.kill(p, 'SIGSTOP');
  });
  afterAll(async () => {
    for (const p of family ?? []) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await killAllProcs();
    if (pkg) fs.rmSync(pkg, { recursive: true, force: true });
  });

  it('show: per-mapping figures from smaps, marked, equal to the kernel’s', () => {
    const r = asNobody(['show', String(fixture.pid), '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(WARNING);
    expect(r.stderr).toContain('per mapping, /proc/PID/smaps');
    const out = JSON.parse(r.stdout) as {
      source: string;
      observer: string;
      totals: { rss: number; uss: number };
      mappings: { start: string; path: string; rss: number; pss: number; uss: number }[];
    };
    expect(out).toMatchObject({ source: 'smaps_rollup', observer: 'included' });
    const kernel = smapsByStart(fixture.pid);
    const vsyscall = [...kernel.values()].some((e) => e.path === '[vsyscall]') ? 1 : 0;
    expect(out.mappings).toHaveLength(kernel.size - vsyscall);
    let anonymous = 0;
    for (const m of out.mappings) {
      const k = kernel.get(m.start.replace(/^0x/, ''));
      expect(k, m.start).toBeDefined();
      expect(m.rss / 1024).toBe(k?.kb.Rss);
      // Memory only the fixture's family maps: the measuring process's libc cannot move it.
      if (m.path === '' || m.path === '[heap]' || m.path === '[stack]' || m.path.startsWith('/dev/zero')) {
        expect(m.pss / 1024).toBe(k?.kb.Pss);
        expect(m.uss / 1024).toBe((k?.kb.Private_Clean ?? 0) + (k?.kb.Private_Dirty ?? 0));
        anonymous += m.rss;
      }
    }
    // The fixture's 64 + 32 + 32 anonymous, shared and copy-on-write pages are in there.
    expect(anonymous).toBeGreaterThanOrEqual(128 * 4096);
    const k = rollup(fixture.pid);
    expect(Math.floor(out.totals.rss / 1024)).toBe(k.Rss);
  });

  it('libs, smem -m: per-file figures of nobody’s processes, from smaps', () => {
    const r = asNobody(['libs', '--json', '-P', match]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(WARNING);
    // Only processes that match are read: none of them was out of reach.
    expect(denied(r.stderr).count).toBe(0);
    const libs = JSON.parse(r.stdout) as {
      source: string;
      libraries: { path: string; rss: number; processes: { pid: number }[] }[];
    };
    expect(libs.source).toBe('smaps_rollup');
    const binary = libs.libraries.find((l) => l.path === path.join(pkg, 'layouts'));
    expect(binary?.processes.map((p) => p.pid).sort((a, b) => a - b)).toEqual(family);
    expect(binary?.rss).toBeGreaterThan(0);

    const m = asNobody(['smem', '-m', '--json', '-P', match]);
    expect(m.code).toBe(0);
    expect(m.stderr).toMatch(WARNING);
    const maps = JSON.parse(m.stdout) as { source: string; mappings: { map: string; pids: number; rss: number }[] };
    expect(maps.source).toBe('smaps_rollup');
    expect(maps.mappings.find((x) => x.map === path.join(pkg, 'layouts'))?.pids).toBe(2);
    const kernelRss = family.reduce(
      (a, pid) =>
        a + [...smapsByStart(pid).values()].filter((e) => e.path === '[heap]').reduce((b, e) => b + e.kb.Rss, 0),
      0,
    );
    expect((maps.mappings.find((x) => x.map === '[heap]')?.rss ?? 0) / 1024).toBe(kernelRss);
  });

  it('smem and smem -u: nobody’s processes from smaps_rollup, per user; the others named in one line', () => {
    const s = asNobody(['smem', '--json', '-P', match]);
    expect(s.code).toBe(0);
    expect(s.stderr).toMatch(WARNING);
    const procs = JSON.parse(s.stdout).processes as JsonProcess[];
    expect(procs.map((p) => p.pid).sort((a, b) => a - b)).toEqual(family);
    for (const p of procs) {
      const k = rollup(p.pid);
      expect(Math.floor(p.rss / 1024)).toBe(k.Rss);
      expect(p.maps).toBeGreaterThan(0);
    }
    const u = asNobody(['smem', '-u', '--json', '--verbose']);
    expect(u.code).toBe(0);
    // The test process itself is root's: nobody may not read it, and is told so.
    const d = denied(u.stderr);
    expect(d.count).toBeGreaterThan(0);
    expect(d.pids).toHaveLength(d.count);
    expect(d.pids).toContain(process.pid);
    for (const pid of family) expect(d.pids).not.toContain(pid);
    expect(u.stderr).toMatch(/; run as root to include them: /);
    expect(u.stderr.split('\n').filter((l) => l.includes('could not be read'))).toHaveLength(1);
    // Without --verbose, one short line: how many, why, and how to see them.
    const quiet = asNobody(['smem', '-u', '--json']);
    const summary = quiet.stderr.split('\n').filter((l) => l.includes('could not be read'));
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatch(
      /^pagewalk: warning: \d+ processes could not be read \(permission denied\) and are left out; run as root to include them \(--verbose names them\)$/,
    );
    expect(Number(/\d+/.exec(summary[0])?.[0])).toBeGreaterThanOrEqual(d.count - 2);
    const users = JSON.parse(u.stdout).users as { user: string; count: number; rss: number }[];
    // Only nobody's processes are readable (the fixture's two at least; the command leaves itself out).
    expect(users.map((x) => x.user)).toEqual(['nobody']);
    expect(users[0].count).toBeGreaterThanOrEqual(2);
    expect(users[0].rss).toBeGreaterThanOrEqual(procs.reduce((a, p) => a + p.rss, 0));
  });

  it('group: the sums of its members, and group-unique memory needs CAP_SYS_ADMIN', () => {
    const j = asNobody(['group', '-P', match, '--json']);
    expect(j.code).toBe(0);
    expect(j.stderr).toMatch(WARNING);
    const g = JSON.parse(j.stdout) as {
      pids: number[];
      processes: { pid: number; pss: number; uss: number; rss: number; swap: number }[];
      only: null;
      sharedOutside: null;
      distinct: null;
      pss: number;
      uss: number;
      rss: number;
      source: string;
    };
    expect([...g.pids].sort((a, b) => a - b)).toEqual(family);
    expect({ only: g.only, sharedOutside: g.sharedOutside, distinct: g.distinct, source: g.source }).toEqual({
      only: null,
      sharedOutside: null,
      distinct: null,
      source: 'smaps_rollup',
    });
    for (const k of ['pss', 'uss', 'rss'] as const) expect(g[k]).toBe(g.processes.reduce((a, p) => a + p[k], 0));
    // Every process is measured, but only unreadable ones the pattern matches are reported: none here.
    expect(j.stderr).not.toContain('could not be read');
    const t = asNobody(['group', '-P', match]);
    expect(t.code).toBe(0);
    expect(t.stderr).not.toContain('could not be read');
    // root's two sleeps match too: those two, and only those, are reported.
    const both = asNobody(['group', '-P', `${match}|${SLEEP_MATCH}`, '--verbose']);
    expect(both.code).toBe(0);
    expect(denied(both.stderr).pids.sort((a, b) => a - b)).toEqual([...fx.sleeps].sort((a, b) => a - b));
    expect(denied(both.stderr).count).toBe(2);
    expect(t.stdout).toMatch(/^Group USS\s+needs CAP_SYS_ADMIN \(run as root\)/m);
    expect(t.stdout).toMatch(/^Sum of PSS\s+\d+ kB/m);
  });

  it('-o FILE nobody may not write: names the file and the reason, for every command that writes one', () => {
    // pkg is root's and a+rX: nobody may read it but not write into it.
    const record = path.join(pkg, 'two.jsonl');
    fs.writeFileSync(record, run(['record', '-n', '2', '-d', '0', '-P', SLEEP_MATCH]).stdout);
    fs.chmodSync(record, 0o644);
    const file = path.join(pkg, 'x.svg');
    for (const args of [
      ['picture', String(fixture.pid), '-o', file],
      ['smem', '--pie', 'name', '-P', match, '-o', file],
      ['smem', '--bar', 'name', '-P', match, '-o', file],
      ['diff', record, '-o', file],
    ]) {
      const r = asNobody(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toBe(`pagewalk: cannot write ${file}: EACCES\n`);
    }
    expect(fs.existsSync(file)).toBe(false);
  });

  it('group of processes nobody may not read: names them instead of "no match"', () => {
    const r = asNobody(['group', '-P', SLEEP_MATCH]);
    expect(r.code).toBe(1);
    const m =
      /^pagewalk: no readable process matches \/.*\/; 2 processes could not be read \(permission denied\) and are left out; run as root to include them: sleep \((\d+) (\d+)\)\n$/.exec(
        r.stderr,
      );
    expect(m, r.stderr).not.toBeNull();
    expect([Number(m?.[1]), Number(m?.[2])].sort((a, b) => a - b)).toEqual([...fx.sleeps].sort((a, b) => a - b));
  });
});
