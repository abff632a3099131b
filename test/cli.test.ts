// The pagewalk command, run as a child process on processes started and
// stopped here, checked against snapshot(), the kernel's smaps_rollup and
// Debian's smem.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../lib/index';
import { copyBuiltPackage } from './helpers/dist';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
const TAG = String(7_000_000 + (process.pid % 1_000_000));
/** Matches our processes but not the command lines that carry it (smem lists itself). */
const MATCH = `^sleep ${TAG}$|holde[r]${TAG}`;
const SLEEP_MATCH = `^sleep ${TAG}$`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], wrap: string[] = [], cliPath = cli): Run {
  const argv = [...wrap, process.execPath, cliPath, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[]): string {
  const r = run(args);
  if (r.code !== 0) throw new Error(`pagewalk ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  expect(r.stderr).toBe('');
  return r.stdout;
}

interface InProcess {
  code: number;
  out: string;
  /** smaps_rollup (kB) of each pid, read right after the command ran, in the same process. */
  rollups: Record<string, Record<string, number>>;
  /** snapshot() in the same process after that. */
  snap: { pid: number; pss: number; uss: number; rss: number; vss: number; swap: number }[];
  group?: { only: number; sharedOutside: number; pss: number; pids: number[] };
}

// PSS depends on who else maps a page, and the measuring process maps libc
// (and node) itself: the command, smaps_rollup and snapshot() are only
// comparable to the byte when read from the same process, one after the other.
const IN_PROCESS = `
const fs = require('node:fs');
const [cli, index, args, pids, group] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3]), JSON.parse(process.argv[4]), process.argv[5]];
let out = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (s) => { out += s; return true; };
require(cli).main(['node', 'pagewalk', ...args]).then(async (code) => {
  const rollups = {};
  for (const p of pids) {
    rollups[p] = {};
    for (const line of fs.readFileSync('/proc/' + p + '/smaps_rollup', 'utf8').split('\\n')) {
      const m = /^(\\w+):\\s+(\\d+) kB/.exec(line);
      if (m) rollups[p][m[1]] = Number(m[2]);
    }
  }
  const { snapshot } = require(index);
  const re = group ? new RegExp(group) : null;
  const s = await snapshot(re ? { filter: (p) => !p.kernelThread, groups: [{ name: 'g', match: (p) => re.test(p.name) || re.test(p.command) }] } : { pids });
  const snap = s.processes.filter((p) => pids.includes(p.pid)).map((p) => ({ pid: p.pid, pss: p.pss, uss: p.uss, rss: p.rss, vss: p.vss, swap: p.swap }));
  const g = s.groups[0];
  write(JSON.stringify({ code, out, rollups, snap, group: g && { only: g.only, sharedOutside: g.sharedOutside, pss: g.totals.pss, pids: g.pids } }));
});
`;

function inProcess(args: string[], pidList: number[], group?: string): InProcess {
  const extra = group === undefined ? [] : [group];
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      IN_PROCESS,
      cli,
      path.join(root, 'dist', 'index.js'),
      JSON.stringify(args),
      JSON.stringify(pidList),
      ...extra,
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`in-process run failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as InProcess;
}

/** smaps_rollup in kB. */
function rollup(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function mapsCount(pid: number): number {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').length;
}

/**
 * Other processes on the machine may map or unmap the libraries ours share
 * while we compare, shifting PSS; a comparison that keeps failing is real.
 */
async function eventually(check: () => void | Promise<void>, tries = 6): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await check();
      return;
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const children: ChildProcess[] = [];
/** Process groups started here (leaders' pids). */
const groups: number[] = [];

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}
const stopped = new Set<number>();
let sleeps: number[] = [];
let holder = 0;
let pids: number[] = [];

function start(cmd: string, args: string[], wrap: string[] = []): ChildProcess {
  const argv = [...wrap, cmd, ...args];
  const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return c;
}

async function execed(pid: number, cmdline: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() === cmdline) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`pid ${pid} never became ${cmdline}`);
}

function stop(pid: number): void {
  process.kill(pid, 'SIGSTOP');
  stopped.add(pid);
}

beforeAll(async () => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  for (let i = 0; i < 2; i++) {
    const c = start('sleep', [TAG]);
    await execed(c.pid as number, `sleep ${TAG}`);
    sleeps.push(c.pid as number);
  }
  // perl shares only libc with node and python: the measurers barely touch its PSS.
  const h = start('perl', ['-e', '$x = "a" x (16 << 20); $| = 1; print "ready\\n"; sleep 100000;', `holder${TAG}`]);
  await new Promise<void>((resolve, reject) => {
    h.stdout?.once('data', () => resolve());
    h.once('exit', () => reject(new Error('holder exited')));
  });
  holder = h.pid as number;
  sleeps = sleeps.sort((a, b) => a - b);
  pids = [...sleeps, holder].sort((a, b) => a - b);
  for (const p of pids) stop(p);
});

afterAll(async () => {
  for (const g of groups) killGroup(g);
  for (const p of stopped) {
    try {
      process.kill(p, 'SIGCONT');
    } catch {
      // gone
    }
  }
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
});

interface JsonProcess {
  pid: number;
  user: string;
  uid: number;
  command: string;
  name: string;
  maps: number;
  swap: number;
  uss: number;
  pss: number;
  rss: number;
  vss: number;
}

describe('pagewalk smem', () => {
  it('reports our stopped processes in JSON, in bytes, equal to smaps_rollup and snapshot()', async () => {
    await eventually(() => {
      const r = inProcess(['smem', '--json', '-P', MATCH], pids);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out);
      expect(out.units).toBe('bytes');
      const procs = out.processes as JsonProcess[];
      expect(procs.map((p) => p.pid).sort((a, b) => a - b)).toEqual(pids);
      for (const p of procs) {
        expect(p.user).toBe(os.userInfo().username);
        expect(p.command).toEqual(p.pid === holder ? expect.stringContaining(`holder${TAG}`) : `sleep ${TAG}`);
        const k = r.rollups[p.pid];
        expect(Math.floor(p.pss / 1024)).toBe(k.Pss);
        expect(Math.floor(p.rss / 1024)).toBe(k.Rss);
        expect(Math.floor(p.uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
        expect(Math.floor(p.swap / 1024)).toBe(k.Swap);
        expect(p.vss % 4096).toBe(0);
        const snap = r.snap.find((x) => x.pid === p.pid);
        expect(snap).toEqual({ pid: p.pid, pss: p.pss, uss: p.uss, rss: p.rss, vss: p.vss, swap: p.swap });
      }
      const h = procs.find((p) => p.pid === holder) as JsonProcess;
      expect(h.uss).toBeGreaterThanOrEqual(16 << 20);
    });
  });

  it('is exact against smaps per mapping where nothing is shared with the measurer', async () => {
    await eventually(() => {
      const procs = JSON.parse(ok(['smem', '--json', '-P', MATCH, '-M', '^\\[(heap|stack)\\]$']))
        .processes as JsonProcess[];
      for (const p of procs) {
        let pss = 0;
        for (const entry of fs.readFileSync(`/proc/${p.pid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-)/)) {
          if (/ \[(heap|stack)\]\n/.test(entry)) pss += Number(/^Pss:\s+(\d+)/m.exec(entry)?.[1]);
        }
        expect(p.maps).toBe(2);
        expect(Math.floor(p.pss / 1024) - pss).toBeGreaterThanOrEqual(0);
        expect(Math.floor(p.pss / 1024) - pss).toBeLessThanOrEqual(1);
      }
    });
  });

  it('prints smem’s default table in kB', async () => {
    await eventually(() => {
      const lines = ok(['smem', '-P', MATCH]).trimEnd().split('\n');
      expect(lines[0].trim().split(/\s+/)).toEqual(['PID', 'User', 'Command', 'Swap', 'USS', 'PSS', 'RSS']);
      expect(lines).toHaveLength(4);
      for (const line of lines.slice(1)) {
        const f = line.trim().split(/\s+/);
        const pid = Number(f[0]);
        const [swap, uss, pss, rss] = f.slice(-4).map(Number);
        const k = rollup(pid);
        expect({ swap, uss, rss }).toEqual({ swap: k.Swap, uss: k.Private_Clean + k.Private_Dirty, rss: k.Rss });
        // The command's own process maps libc too while it measures: shared pages count a little less.
        expect(pss).toBeLessThanOrEqual(k.Pss);
        expect(pss).toBeGreaterThanOrEqual(k.Pss - Math.ceil((k.Pss - uss) / 2));
      }
      // Sorted by PSS, smallest first, as smem does.
      const pss = lines.slice(1).map((l) => Number(l.trim().split(/\s+/).at(-2)));
      expect([...pss].sort((a, b) => a - b)).toEqual(pss);
    });
  });

  it('matches Debian smem side by side (same pids, PSS within its per-mapping rounding)', async () => {
    expect(fs.existsSync('/usr/bin/smem'), 'run scripts/setup-machine.sh').toBe(true);
    await eventually(() => {
      const theirs = execFileSync('smem', ['-c', 'pid pss uss rss', '-P', MATCH, '-H'], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number));
      const ours = ok(['smem', '-c', 'pid pss uss rss', '-P', MATCH, '-H'])
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number));
      expect(theirs.map((r) => r[0]).sort()).toEqual(ours.map((r) => r[0]).sort());
      for (const [pid, pss, uss, rss] of ours) {
        const [, spss, suss, srss] = theirs.find((r) => r[0] === pid) as number[];
        // smem sums per-mapping Pss lines, each truncated to the kB (and it maps libc itself while it reads).
        expect(Math.abs(pss - spss)).toBeLessThanOrEqual(mapsCount(pid));
        expect([uss, rss]).toEqual([suss, srss]);
      }
    });
  });

  it('adds totals, human units, percentages, no header, numeric users', () => {
    const t = ok(['smem', '-P', MATCH, '-t', '-c', 'pid user pss']).trimEnd().split('\n');
    expect(t.at(-2)).toMatch(/^-+$/);
    expect(t.at(-1)?.trim().split(/\s+/).slice(0, 2)).toEqual(['3', '1']);
    const k = ok(['smem', '-P', MATCH, '-k', '-H', '-c', 'uss rss']).trim().split('\n');
    expect(k).toHaveLength(3);
    for (const line of k) for (const cell of line.trim().split(/\s+/)) expect(cell).toMatch(/^(0|\d+\.\d[KMGT]?)$/);
    const p = ok(['smem', '-P', MATCH, '-p', '-H', '-c', 'pss']).trim().split('\n');
    for (const line of p) expect(line.trim()).toMatch(/^\d+\.\d\d%$/);
    const n = ok(['smem', '-P', MATCH, '-n', '-H', '-c', 'user']).trim().split('\n');
    expect(n.map((l) => l.trim())).toEqual(pids.map(() => String(process.getuid?.())));
  });

  it('sorts on any field and reverses', () => {
    const rss = (args: string[]) =>
      ok(['smem', '-P', MATCH, '-H', '-c', 'pid rss', ...args])
        .trim()
        .split('\n')
        .map((l) => Number(l.trim().split(/\s+/)[1]));
    const down = rss(['-s', 'rss', '-r']);
    expect(down[0]).toBe(Math.max(...down));
    expect([...down].sort((a, b) => b - a)).toEqual(down);
    const byPid = ok(['smem', '-P', MATCH, '-H', '-c', 'pid', '-s', 'pid'])
      .trim()
      .split('\n')
      .map((l) => Number(l.trim()));
    expect(byPid).toEqual(pids);
  });

  it('counts mappings like smaps does (without [vsyscall])', () => {
    const rows = ok(['smem', '-P', SLEEP_MATCH, '-H', '-c', 'pid maps']).trim().split('\n');
    for (const row of rows) {
      const [pid, maps] = row.trim().split(/\s+/).map(Number);
      const vsyscall = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('[vsyscall]') ? 1 : 0;
      expect(maps).toBe(mapsCount(pid) - vsyscall);
    }
  });

  it('writes CSV', () => {
    const csv = ok(['smem', '-P', MATCH, '--csv', '-c', 'pid command pss']).split('\r\n');
    expect(csv[0]).toBe('PID,Command,PSS');
    expect(csv).toHaveLength(5);
    expect(
      csv
        .slice(1, 4)
        .map((l) => Number(l.split(',')[0]))
        .sort(),
    ).toEqual(pids.map(Number).sort());
  });

  it('filters mappings with -M and sums only those', async () => {
    await eventually(() => {
      const procs = JSON.parse(ok(['smem', '--json', '-P', MATCH, '-M', '\\[heap\\]'])).processes as JsonProcess[];
      expect(procs.map((p) => p.pid).sort()).toEqual([...pids].sort());
      for (const p of procs) {
        expect(p.maps).toBe(1);
        const smaps = fs.readFileSync(`/proc/${p.pid}/smaps`, 'utf8');
        const heap = smaps.slice(smaps.indexOf('[heap]'));
        expect(Math.floor(p.rss / 1024)).toBe(Number(/^Rss:\s+(\d+)/m.exec(heap)?.[1]));
      }
    });
  });

  it('reports per mapping path across processes (-m)', async () => {
    await eventually(() => {
      const maps = JSON.parse(ok(['smem', '-m', '--json', '-P', MATCH, '-M', 'libc'])).mappings as {
        map: string;
        pids: number;
        pss: number;
      }[];
      const libc = maps.find((m) => /\/libc\.so/.test(m.map));
      expect(libc?.pids).toBe(3);
      for (const m of maps) expect(m.map).toMatch(/libc/);
      const table = ok(['smem', '-m', '-P', MATCH, '-M', 'libc', '-c', 'map pids pss']).trim().split('\n');
      expect(table[0].trim().split(/\s+/)).toEqual(['Map', 'PIDs', 'PSS']);
      expect(table.length).toBe(maps.length + 1);
    });
  });

  it('reports per user (-u)', async () => {
    await eventually(() => {
      const r = inProcess(['smem', '-u', '--json', '-P', MATCH], pids);
      const users = JSON.parse(r.out).users as { user: string; count: number; pss: number; uss: number }[];
      expect(users).toHaveLength(1);
      expect(users[0].count).toBe(3);
      expect(users[0].pss).toBe(r.snap.reduce((a, p) => a + p.pss, 0));
      expect(users[0].uss).toBe(r.snap.reduce((a, p) => a + p.uss, 0));
    });
  });

  it('summarises the system (-w) from /proc/meminfo with the measured PSS', () => {
    const w = JSON.parse(ok(['smem', '-w', '--json'])).system as {
      area: string;
      used: number;
      measured: number | string;
    }[];
    expect(w.map((r) => r.area)).toEqual(['kernel dynamic memory', 'userspace memory', 'free memory']);
    const total = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1]) * 1024;
    const used = w.reduce((a, r) => a + r.used, 0);
    expect(Math.abs(used - total)).toBeLessThan(total * 0.05);
    expect(w[1].measured).toBeGreaterThan(0);
    const table = ok(['smem', '-w']).split('\n');
    expect(table[0].trim().split(/\s+/)).toEqual(['Area', 'Used', 'Cache', 'Noncache', 'Measured']);
  });

  it('writes SVG charts when stdout is not a terminal, unicode blocks when it is', () => {
    const bar = ok(['smem', '-P', MATCH, '--bar', 'pid', '-c', 'uss pss rss']);
    expect(bar.startsWith('<?xml')).toBe(true);
    expect(bar.match(/<rect [^>]*><title>/g)).toHaveLength(9);
    const file = path.join(os.tmpdir(), `pagewalk-pie-${TAG}.svg`);
    try {
      expect(ok(['smem', '-P', MATCH, '--pie', 'name', '-o', file])).toBe('');
      const pie = fs.readFileSync(file, 'utf8');
      expect(pie).toContain('PSS by name');
      expect(pie).toMatch(/>perl [\d.]+ MiB \(9\d\.\d\d%\)</);
    } finally {
      fs.rmSync(file, { force: true });
    }
    // script(1) gives the command a terminal.
    const cmd = `${process.execPath} ${cli} smem -P '${MATCH}' --bar pid -c 'uss rss'`;
    const tty = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(tty).toContain('█');
    expect(tty).not.toContain('<svg');
  });

  it('draws a progress bar on a terminal when the scan lasts', async (ctx) => {
    // A thousand small processes make a scan of about a second on two cores.
    const tag3 = String(Number(TAG) + 2);
    // Its own process group, so that one kill ends the shell and every sleep.
    const family = spawn('bash', ['-c', `for i in $(seq 1 1000); do sleep ${tag3} & done; wait`], {
      detached: true,
      stdio: 'ignore',
    });
    groups.push(family.pid as number);
    try {
      const re = new RegExp(`^sleep ${tag3}$`);
      for (let i = 0; i < 500; i++) {
        const n = spawnSync('pgrep', ['-c', '-P', String(family.pid)], { encoding: 'utf8' }).stdout.trim();
        if (Number(n) >= 1000) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      let last = 0;
      const began = performance.now();
      await snapshot({ filter: (p) => re.test(p.command), onProgress: () => (last = performance.now() - began) });
      if (last < 400) ctx.skip(); // too fast a machine for the bar to show
      const cmd = `${process.execPath} ${cli} smem -P '^sleep ${tag3}$' -c pid -H > /dev/null`;
      const tty = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'latin1' });
      expect(tty).toMatch(/\r\[#+ *\] \d+\/1000 processes/);
      // Cleared at the end, so the next prompt starts on a clean line.
      expect(tty.endsWith('\r\x1b[K')).toBe(true);
    } finally {
      killGroup(family.pid as number);
    }
  });

  it('shows no progress bar when stderr is not a terminal', () => {
    const r = run(['smem', '-c', 'pid']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });
});

describe('pagewalk show', () => {
  it('lists every mapping and totals equal to smaps_rollup', async () => {
    await eventually(() => {
      const r = inProcess(['show', String(holder), '--json'], [holder]);
      const out = JSON.parse(r.out);
      const k = r.rollups[holder];
      expect(Math.floor(out.totals.pss / 1024)).toBe(k.Pss);
      expect(Math.floor(out.totals.rss / 1024)).toBe(k.Rss);
      expect(Math.floor(out.totals.uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
      const sum = out.mappings.reduce((a: number, m: { rss: number }) => a + m.rss, 0);
      expect(sum).toBe(out.totals.rss);
      const vsyscall = fs.readFileSync(`/proc/${holder}/maps`, 'utf8').includes('[vsyscall]') ? 1 : 0;
      expect(out.mappings).toHaveLength(mapsCount(holder) - vsyscall);
    });
    const table = ok(['show', String(sleeps[0])])
      .trimEnd()
      .split('\n');
    expect(table[0].trim().split(/\s+/)).toEqual([
      'Address',
      'Perm',
      'Virtual',
      'RSS',
      'PSS',
      'USS',
      'Shared',
      'Swap',
      'Object',
    ]);
    expect(table.at(-1)).toMatch(/TOTAL \(\d+ mappings\)$/);
    expect(table.some((l) => l.endsWith('/usr/bin/sleep'))).toBe(true);
  });
});

describe('pagewalk libs', () => {
  it('ranks files by PSS with the processes mapping them', async () => {
    await eventually(() => {
      const libs = JSON.parse(ok(['libs', '--json', '-P', MATCH])).libraries as {
        path: string;
        pss: number;
        rss: number;
        processes: { pid: number; pss: number }[];
      }[];
      const libc = libs.find((l) => /\/libc\.so/.test(l.path));
      expect(libc?.processes.map((p) => p.pid).sort()).toEqual([...pids].sort());
      for (const l of libs) {
        expect(l.path.startsWith('/')).toBe(true);
        // PSS sums in fixed point, so the file total may exceed the sum of truncated parts by a byte each.
        const parts = l.processes.reduce((a, p) => a + p.pss, 0);
        expect(l.pss - parts).toBeGreaterThanOrEqual(0);
        expect(l.pss - parts).toBeLessThanOrEqual(l.processes.length);
      }
      expect(libs.map((l) => l.pss)).toEqual([...libs.map((l) => l.pss)].sort((a, b) => b - a));
    });
    const text = ok(['libs', '-P', SLEEP_MATCH, '-M', 'bin/sleep']).trimEnd().split('\n');
    expect(text[0].trim().split(/\s+/)).toEqual(['RSS', 'PSS', 'USS', 'Swap', 'Library', '/', 'Process']);
    expect(text[1]).toMatch(/\/usr\/bin\/sleep$/);
    expect(
      text
        .slice(2)
        .map((l) => /\[(\d+)\]$/.exec(l)?.[1])
        .map(Number)
        .sort(),
    ).toEqual(sleeps.map(Number).sort());
  });
});

describe('pagewalk pages', () => {
  const heapOf = (pid: number) => {
    const line = fs
      .readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .find((l) => l.endsWith('[heap]')) as string;
    return line.split(' ')[0];
  };

  function plainEntries(pid: number, start: bigint, pages: number): bigint[] {
    const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    try {
      const buf = Buffer.alloc(pages * 8);
      fs.readSync(fd, buf, 0, buf.length, Number((start >> 12n) * 8n));
      return Array.from({ length: pages }, (_, i) => buf.readBigUInt64LE(i * 8));
    } finally {
      fs.closeSync(fd);
    }
  }

  it('decodes each entry of a range like a plain read of pagemap', () => {
    const range = heapOf(sleeps[0]);
    const [s, e] = range.split('-').map((x) => BigInt(`0x${x}`));
    const pages = Number((e - s) >> 12n);
    const entries = plainEntries(sleeps[0], s, pages);
    const out = JSON.parse(ok(['pages', String(sleeps[0]), range, '--json'])) as {
      address?: string;
      pages?: number;
      flags: string[];
      pfn?: number | null;
    }[];
    let i = 0;
    for (const rec of out) {
      if (rec.pages !== undefined) {
        // A stretch with nothing present or swapped.
        for (let k = 0; k < rec.pages; k++) expect(entries[i + k] & (3n << 62n)).toBe(0n);
        i += rec.pages;
        continue;
      }
      expect(BigInt(rec.address as string)).toBe(s + (BigInt(i) << 12n));
      expect(rec.flags.includes('present')).toBe((entries[i] & (1n << 63n)) !== 0n);
      expect(rec.flags.includes('exclusive')).toBe((entries[i] & (1n << 56n)) !== 0n);
      if (rec.flags.includes('present')) expect(BigInt(rec.pfn as number)).toBe(entries[i] & ((1n << 55n) - 1n));
      i++;
    }
    expect(i).toBe(pages);
    const text = ok(['pages', String(sleeps[0]), range])
      .trimEnd()
      .split('\n');
    expect(text[0]).toMatch(/^ADDRESS\s+FLAGS\s+PFN\/SWAP$/);
    expect(text[1]).toMatch(/^0x[0-9a-f]+\s+present,exclusive(,soft-dirty)?\s+pfn=0x[0-9a-f]+$/);
  });

  it('run-length encodes a whole process into ranges covering every mapping', () => {
    const runs = JSON.parse(ok(['pages', String(holder), '--runs', '--json'])) as {
      start: string;
      end: string;
      pages: number;
      flags: string[];
    }[];
    let total = 0;
    for (const r of runs) {
      expect(Number((BigInt(r.end) - BigInt(r.start)) >> 12n)).toBe(r.pages);
      total += r.pages;
    }
    let mapped = 0;
    for (const line of fs.readFileSync(`/proc/${holder}/maps`, 'utf8').trim().split('\n')) {
      const [s, e] = line
        .split(' ')[0]
        .split('-')
        .map((x) => BigInt(`0x${x}`));
      if (s < 1n << 63n) mapped += Number((e - s) >> 12n);
    }
    expect(total).toBe(mapped);
    // Neighbouring runs differ in state or are not contiguous.
    for (let i = 1; i < runs.length; i++) {
      if (runs[i].start === runs[i - 1].end) expect(runs[i].flags).not.toEqual(runs[i - 1].flags);
    }
    // The 16 MiB buffer is one long run of exclusive resident pages.
    expect(runs.some((r) => r.pages >= 4096 && r.flags.includes('present') && r.flags.includes('exclusive'))).toBe(
      true,
    );
    const text = ok(['pages', String(holder), '--runs']).split('\n');
    expect(text[0]).toMatch(/^START\s+END\s+PAGES\s+STATE$/);
  });

  it('rejects a malformed range', () => {
    const r = run(['pages', String(holder), 'zz-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pagewalk: invalid range "zz-1"/);
  });
});

describe('pagewalk group', () => {
  it('gives what the group alone holds, what it shares outside, and its PSS', async () => {
    await eventually(async () => {
      const r = inProcess(['group', '-P', SLEEP_MATCH, '--json'], sleeps, SLEEP_MATCH);
      const out = JSON.parse(r.out);
      const g = r.group as NonNullable<InProcess['group']>;
      expect(out.pids.sort()).toEqual([...sleeps].sort());
      expect(g.pids.sort()).toEqual([...sleeps].sort());
      expect([out.only, out.sharedOutside, out.pss]).toEqual([g.only, g.sharedOutside, g.pss]);
      // Pages the two sleeps share only with each other count in the group's USS, not in their own.
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

describe('pagewalk picture', () => {
  it('draws every mapping as a band and compresses the gaps', () => {
    const file = path.join(os.tmpdir(), `pagewalk-picture-${TAG}.svg`);
    try {
      expect(ok(['picture', String(holder), '-o', file])).toBe('');
      const svg = fs.readFileSync(file, 'utf8');
      expect(svg.startsWith('<?xml')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      const labels = svg.match(/>0x[0-9a-f]+-0x[0-9a-f]+ /g) ?? [];
      expect(labels).toHaveLength(mapsCount(holder));
      expect(svg).toMatch(/… [\d.]+ TiB unmapped …/);
      expect(svg).toContain('#D55E00'); // resident exclusive: the buffer
      const height = Number(/height="(\d+)"/.exec(svg)?.[1]);
      expect(height).toBeLessThan(100 + mapsCount(holder) * 26);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

describe('zero page', () => {
  it('colours pages that map the shared zero page apart from shared memory', async () => {
    // Reading untouched private anonymous memory maps the zero page.
    const script = [
      'import mmap, sys',
      'm = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ | mmap.PROT_WRITE)',
      'sum(m[i] for i in range(0, 2 << 20, 4096))',
      'print("ready", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const c = spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(c);
    await new Promise<void>((resolve) => c.stdout?.once('data', () => resolve()));
    const pid = c.pid as number;
    stop(pid);
    const file = path.join(os.tmpdir(), `pagewalk-zero-${TAG}.svg`);
    try {
      expect(ok(['picture', String(pid), '-o', file])).toBe('');
      const svg = fs.readFileSync(file, 'utf8');
      // The legend swatch and at least one band segment.
      expect((svg.match(/fill="#F0E442"/g) ?? []).length).toBeGreaterThan(1);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

describe('errors and help', () => {
  it('exits 3 for a missing process with a one-line message', () => {
    for (const args of [
      ['show', '999999'],
      ['pages', '999999'],
      ['picture', '999999'],
    ]) {
      const r = run(args);
      expect(r.code).toBe(3);
      expect(r.stderr).toBe('pagewalk: no such process: 999999\n');
    }
  });

  it('exits 2 on usage errors without stack traces', () => {
    const cases: [string[], RegExp][] = [
      [
        ['smem', '-c', 'pid foo'],
        /^pagewalk: unknown column "foo" \(known: pid user command name maps swap uss pss rss vss\)\n$/,
      ],
      [['smem', '-P', '('], /^pagewalk: invalid regex "\(": .*\n$/],
      [['smem', '-s', 'bogus'], /^pagewalk: unknown column "bogus"/],
      [['smem', '--bogus'], /^pagewalk: unknown option '--bogus'/],
      [['show', 'abc'], /^pagewalk: invalid pid "abc"\n$/],
      [['group'], /^pagewalk: required option '-P, --processfilter <regex>' not specified\n$/],
      [['nosuchcommand', 'x'], /^pagewalk: /],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('has --help for every command', () => {
    for (const cmd of ['smem', 'show', 'libs', 'pages', 'group', 'picture']) {
      const r = run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: pagewalk ${cmd}`);
    }
    expect(run(['--help']).stdout).toMatch(/Commands:[\s\S]*smem[\s\S]*picture/);
  });

  it('names CAP_SYS_ADMIN when run without privilege', async () => {
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    // nobody may not be able to enter the checkout: run a readable copy.
    const pkg = copyBuiltPackage();
    const asNobody = (args: string[]) => run(args, nobody, path.join(pkg, 'dist', 'cli.js'));
    const tag2 = String(Number(TAG) + 1);
    const c = start('sleep', [tag2], nobody);
    await execed(c.pid as number, `sleep ${tag2}`);
    const show = asNobody(['show', String(c.pid)]);
    expect(show.code).toBe(1);
    expect(show.stderr).toBe('pagewalk: per-mapping figures needs CAP_SYS_ADMIN (run as root)\n');
    const group = asNobody(['group', '-P', `^sleep ${tag2}$`]);
    expect(group.code).toBe(1);
    expect(group.stderr).toBe('pagewalk: group accounting needs CAP_SYS_ADMIN (run as root)\n');
    // smem still answers, from smaps_rollup, and says so.
    const smem = asNobody(['smem', '-P', `^sleep ${tag2}$`, '--json']);
    expect(smem.code).toBe(0);
    expect(smem.stderr).toMatch(/^pagewalk: warning: .*CAP_SYS_ADMIN/);
    const procs = JSON.parse(smem.stdout).processes as JsonProcess[];
    expect(procs.map((p) => p.pid)).toEqual([c.pid]);
    const k = rollup(c.pid as number);
    expect(Math.floor(procs[0].rss / 1024)).toBe(k.Rss);
    expect(Math.floor(procs[0].uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
    fs.rmSync(pkg, { recursive: true, force: true });
  });
});
