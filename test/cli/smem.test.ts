// pagewalk smem against snapshot(), the kernel's smaps_rollup and Debian's smem.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { iec } from '../../lib/cli/render';
import { snapshot } from '../../lib/index';
import {
  cli,
  eventually,
  fx,
  groups,
  inProcess,
  type JsonProcess,
  killGroup,
  MATCH,
  mapsCount,
  ok,
  rollup,
  run,
  SLEEP_MATCH,
  TAG,
  useCliFixtures,
  withoutDeniedLine,
} from '../helpers/cli';
import { fixtureBin } from '../helpers/fixture';
import { startProc } from '../helpers/procs';

useCliFixtures();

describe('pagewalk smem', () => {
  it('reports our stopped processes in JSON, in bytes, equal to smaps_rollup and snapshot() (--include-self)', async () => {
    await eventually(() => {
      // The kernel's view of the moment: the one smaps_rollup, read from the same process, has.
      const r = inProcess(['smem', '--json', '--include-self', '-P', MATCH], fx.pids);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out);
      expect(out.units).toBe('bytes');
      expect(out.observer).toBe('included');
      const procs = out.processes as JsonProcess[];
      expect(procs.map((p) => p.pid).sort((a, b) => a - b)).toEqual(fx.pids);
      for (const p of procs) {
        expect(p.user).toBe(os.userInfo().username);
        expect(p.command).toEqual(p.pid === fx.holder ? expect.stringContaining(`holder${TAG}`) : `sleep ${TAG}`);
        const k = r.rollups[p.pid];
        expect(Math.floor(p.pss / 1024)).toBe(k.Pss);
        expect(Math.floor(p.rss / 1024)).toBe(k.Rss);
        expect(Math.floor(p.uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
        expect(Math.floor(p.swap / 1024)).toBe(k.Swap);
        expect(p.vss % 4096).toBe(0);
        const snap = r.snap.find((x) => x.pid === p.pid);
        expect(snap).toEqual({ pid: p.pid, pss: p.pss, uss: p.uss, rss: p.rss, vss: p.vss, swap: p.swap });
      }
      const h = procs.find((p) => p.pid === fx.holder) as JsonProcess;
      expect(h.uss).toBeGreaterThanOrEqual(16 << 20);
    });
  });

  it('by default leaves its own mappings out: equal to snapshot({ excludeSelf }) and to smaps_rollup once it has exited', async () => {
    await eventually(() => {
      const r = inProcess(['smem', '--json', '-P', MATCH], fx.pids);
      const out = JSON.parse(r.out);
      expect(out.observer).toBe('excluded');
      for (const p of out.processes as JsonProcess[]) {
        const snap = r.snap.find((x) => x.pid === p.pid);
        expect(snap).toEqual({ pid: p.pid, pss: p.pss, uss: p.uss, rss: p.rss, vss: p.vss, swap: p.swap });
        // The process that measured has exited now; the kernel agrees, to the
        // kB, although the young command faulted in pages of libc (which
        // these processes map) while it measured.
        const k = rollup(p.pid);
        expect(Math.floor(p.pss / 1024)).toBe(k.Pss);
        expect(Math.floor(p.uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
        // The same processes seen while the measuring process maps libc and node: less PSS, never more.
        const included = r.rollups[p.pid];
        expect(included.Pss).toBeLessThanOrEqual(k.Pss);
      }
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
        // Read once the command has exited: its figures leave its own mappings out, so they agree.
        const k = rollup(pid);
        expect({ swap, uss, pss, rss }).toEqual({
          swap: k.Swap,
          uss: k.Private_Clean + k.Private_Dirty,
          pss: k.Pss,
          rss: k.Rss,
        });
      }
      // Sorted by PSS, smallest first, as smem does.
      const pss = lines.slice(1).map((l) => Number(l.trim().split(/\s+/).at(-2)));
      expect([...pss].sort((a, b) => a - b)).toEqual(pss);
    });
  });

  it('matches Debian smem side by side, exactly, on processes that share pages with neither tool', async () => {
    expect(fs.existsSync('/usr/bin/smem'), 'run scripts/setup-machine.sh').toBe(true);
    // Each tool maps pages itself while it reads, and lowers the PSS of every
    // process that shares them: smem (python) shares libc, libm and the
    // locale files, pagewalk (node) libc and libstdc++, and the two run at
    // different moments while other processes on the machine come and go,
    // mapping libc too. pagewalk leaves itself out by default; smem cannot.
    // A statically linked fixture (a parent and two forked children sharing
    // its text, a MAP_SHARED region and copy-on-write pages) maps no library
    // at all: nobody but these three maps their pages, bar the vdso, whose
    // share per process is far below 1 kB. Then the tools differ only in how
    // they add: smem sums the Pss line of every mapping, which the kernel
    // truncated to the kB; pagewalk sums in the kernel's fixed point and
    // truncates once, as smaps_rollup does.
    const tag = `side${TAG}`;
    const fixture = await startProc(fixtureBin('layouts-static'), ['anon', 'file', 'shared', 'cow', tag]);
    const family = JSON.parse(fixture.line) as { pid: number; children: number[] };
    const pids = [family.pid, ...family.children].sort((a, b) => a - b);
    for (const p of pids) process.kill(p, 'SIGSTOP');
    try {
      const match = `layouts-stati[c] .*${tag}$`;
      const table = (text: string) =>
        text
          .trim()
          .split('\n')
          .map((l) => l.trim().split(/\s+/).map(Number));
      const theirs = table(execFileSync('smem', ['-c', 'pid pss uss rss', '-P', match, '-H'], { encoding: 'utf8' }));
      const ours = table(ok(['smem', '-c', 'pid pss uss rss', '-P', match, '-H']));
      expect(ours.map((r) => r[0]).sort((a, b) => a - b)).toEqual(pids);
      expect(theirs.map((r) => r[0]).sort((a, b) => a - b)).toEqual(pids);
      for (const [pid, pss, uss, rss] of ours) {
        const [, smemPss, smemUss, smemRss] = theirs.find((r) => r[0] === pid) as number[];
        expect([uss, rss]).toEqual([smemUss, smemRss]);
        // smem's PSS is our per-mapping PSS, truncated mapping by mapping.
        const show = JSON.parse(ok(['show', String(pid), '--json'])) as { mappings: { pss: number }[] };
        const truncated = show.mappings.reduce((a, m) => a + Math.floor(m.pss / 1024), 0);
        expect(smemPss).toBe(truncated);
        // Ours is smaps_rollup's, which truncates once: at most a kB per mapping above smem's.
        const k = rollup(pid);
        expect({ pss, uss, rss }).toEqual({ pss: k.Pss, uss: k.Private_Clean + k.Private_Dirty, rss: k.Rss });
        expect(pss - smemPss).toBeGreaterThanOrEqual(0);
        expect(pss - smemPss).toBeLessThan(show.mappings.length);
      }
      // Sharing is there to be divided: the three share text and memory, so PSS < RSS.
      for (const [, pss, , rss] of ours) expect(pss).toBeLessThan(rss);
    } finally {
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await fixture.kill();
    }
  });

  it('adds totals, human units, percentages, no header, numeric users', () => {
    const t = ok(['smem', '-P', MATCH, '-t', '-c', 'pid user pss']).trimEnd().split('\n');
    expect(t.at(-2)).toMatch(/^-+$/);
    expect(t.at(-1)?.trim().split(/\s+/).slice(0, 2)).toEqual(['3', '1']);
    // Machine-read totals never put counts where a pid or a user goes.
    const j = JSON.parse(ok(['smem', '-P', MATCH, '-t', '--json']));
    const procs = j.processes as JsonProcess[];
    expect(j.totals).toEqual({
      processes: 3,
      users: 1,
      swap: procs.reduce((a, p) => a + p.swap, 0),
      uss: procs.reduce((a, p) => a + p.uss, 0),
      pss: procs.reduce((a, p) => a + p.pss, 0),
      rss: procs.reduce((a, p) => a + p.rss, 0),
    });
    const csv = ok(['smem', '-P', MATCH, '-t', '--csv', '-c', 'pid user pss']).trim().split('\n');
    expect(csv.at(-1)).toMatch(/^total,,\d+$/);
    // Each row and the total truncated to the kB: the total is the sum of the rows, or up to a kB a row more.
    const rowsKb = csv.slice(1, -1).reduce((a, l) => a + Number(l.split(',')[2]), 0);
    const totalKb = Number(csv.at(-1)?.split(',')[2]);
    expect(totalKb).toBeGreaterThanOrEqual(rowsKb);
    expect(totalKb).toBeLessThan(rowsKb + 3);
    const k = ok(['smem', '-P', MATCH, '-k', '-H', '-c', 'uss rss']).trim().split('\n');
    expect(k).toHaveLength(3);
    for (const line of k) for (const cell of line.trim().split(/\s+/)) expect(cell).toMatch(/^(0|\d+\.\d[KMGT]?)$/);
    const p = ok(['smem', '-P', MATCH, '-p', '-H', '-c', 'pss']).trim().split('\n');
    for (const line of p) expect(line.trim()).toMatch(/^\d+\.\d\d%$/);
    const n = ok(['smem', '-P', MATCH, '-n', '-H', '-c', 'user']).trim().split('\n');
    expect(n.map((l) => l.trim())).toEqual(fx.pids.map(() => String(process.getuid?.())));
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
    expect(byPid).toEqual(fx.pids);
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
    ).toEqual(fx.pids.map(Number).sort());
  });

  it('filters mappings with -M and sums only those', async () => {
    await eventually(() => {
      const procs = JSON.parse(ok(['smem', '--json', '-P', MATCH, '-M', '\\[heap\\]'])).processes as JsonProcess[];
      expect(procs.map((p) => p.pid).sort()).toEqual([...fx.pids].sort());
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

  it('-m as smem has it: its default columns, its name for anonymous memory, its column widths', () => {
    const ours = ok(['smem', '-m', '-P', MATCH]).trimEnd().split('\n');
    expect(ours[0].trim().split(/\s+/)).toEqual(['Map', 'PIDs', 'AVGPSS', 'PSS']);
    const names = ours.slice(1).map((l) => l.slice(0, 40).trim());
    expect(names).toContain('<anonymous>');
    expect(names).not.toContain('[anon]');
    // Debian's smem on the same processes: the same header and the same map names
    // (its names stop at the first space: pagewalk keeps " (deleted)", docs/cli.md).
    const smem = spawnSync('smem', ['-m', '-P', MATCH], { encoding: 'utf8' });
    if (smem.status === 0) {
      const theirs = smem.stdout.trimEnd().split('\n');
      expect(theirs[0].trim().split(/\s+/)).toEqual(ours[0].trim().split(/\s+/));
      const theirNames = theirs.slice(1).map((l) => l.slice(0, 40).trim());
      for (const n of names) if (!n.includes(' ')) expect(theirNames).toContain(n);
    }
    // The Command column is smem's 27 characters wide.
    const table = ok(['smem', '-P', MATCH, '-c', 'command pid']).trimEnd().split('\n');
    const holder = table.find((l) => l.startsWith('perl -e'));
    expect(holder?.indexOf(String(fx.holder))).toBeGreaterThanOrEqual(27);
    expect(holder?.slice(0, 28).trimEnd()).toHaveLength(27);
  });

  it('reports per user (-u)', async () => {
    await eventually(() => {
      const r = inProcess(['smem', '-u', '--json', '-P', MATCH], fx.pids);
      const users = JSON.parse(r.out).users as { user: string; count: number; pss: number; uss: number }[];
      expect(users).toHaveLength(1);
      expect(users[0].count).toBe(3);
      expect(users[0].pss).toBe(r.snap.reduce((a, p) => a + p.pss, 0));
      expect(users[0].uss).toBe(r.snap.reduce((a, p) => a + p.uss, 0));
      // Read once the command has exited: each process's PSS as the kernel now has it.
      for (const p of r.snap) expect(Math.floor(p.pss / 1024)).toBe(rollup(p.pid).Pss);
    });
  });

  it('summarises the system (-w) from /proc/meminfo with the measured PSS', () => {
    const w = JSON.parse(ok(['smem', '-w', '--json'])).system as {
      area: string;
      used: number;
      measured: number | string;
    }[];
    // smem's five rows, in its order.
    expect(w.map((r) => r.area)).toEqual([
      'firmware/hardware',
      'kernel image',
      'kernel dynamic memory',
      'userspace memory',
      'free memory',
    ]);
    const total = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1]) * 1024;
    const used = w.slice(2).reduce((a, r) => a + r.used, 0);
    expect(Math.abs(used - total)).toBeLessThan(total * 0.05);
    // As root, /proc/iomem: the kernel image is its code, rodata, data and bss; with
    // the firmware's share they make up, with MemTotal, the RAM the firmware reported.
    const ranges = fs
      .readFileSync('/proc/iomem', 'utf8')
      .split('\n')
      .map((l) => /^( *)([0-9a-f]+)-([0-9a-f]+) : (.+)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ top: m[1] === '', name: m[4], first: Number.parseInt(m[2], 16), last: Number.parseInt(m[3], 16) }))
      .map((r) => ({ ...r, size: r.last + 1 - r.first }));
    // Whole pages of RAM: a range may begin or end inside a page (...-0009fbff).
    const ram = ranges
      .filter((r) => r.top && r.name === 'System RAM')
      .reduce((a, r) => a + (Math.floor((r.last + 1) / 4096) - Math.ceil(r.first / 4096)) * 4096, 0);
    const image = ranges.filter((r) => /^Kernel (code|rodata|data|bss)$/.test(r.name)).reduce((a, r) => a + r.size, 0);
    expect(image).toBeGreaterThan(1 << 20);
    expect(w[1].used).toBe(image);
    expect(w[0].used + w[1].used + total).toBe(ram);
    // The RAM agrees with the memory blocks the kernel onlined, to a block.
    const block = Number.parseInt(fs.readFileSync('/sys/devices/system/memory/block_size_bytes', 'utf8'), 16);
    const blocks = fs.readdirSync('/sys/devices/system/memory').filter((n) => /^memory\d+$/.test(n)).length;
    expect(Math.abs(blocks * block - ram)).toBeLessThanOrEqual(block);
    expect(w[3].measured).toBeGreaterThan(0);
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
      // The legend: the label on its line, its size and share under it.
      expect(pie).toMatch(/>perl<\/text>\n<text [^>]*>[\d.]+ MiB \(9\d\.\d\d%\)</);
    } finally {
      fs.rmSync(file, { force: true });
    }
    // script(1) gives the command a terminal.
    const cmd = `${process.execPath} ${cli} smem -P '${MATCH}' --bar pid -c 'uss rss'`;
    const tty = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(tty).toContain('█');
    expect(tty).not.toContain('<svg');
  });

  it('--bar: rows of one label merged into one group, one bar per size column (-c, or the default columns)', () => {
    // The two sleeps share the name "sleep": one group of bars, their figures added.
    const merged = ok(['smem', '-P', SLEEP_MATCH, '--bar', 'name', '-c', 'uss rss']);
    const titles = [...merged.matchAll(/<rect [^>]*><title>([^<]*)<\/title>/g)].map((m) => m[1]);
    expect(titles.map((t) => t.replace(/: .*/, ''))).toEqual(['sleep USS', 'sleep RSS']);
    const procs = JSON.parse(ok(['smem', '-P', SLEEP_MATCH, '--json'])).processes as JsonProcess[];
    expect(procs).toHaveLength(2);
    const rss = procs.reduce((a, p) => a + p.rss, 0);
    // The sum of both, as iec() writes it (one decimal).
    expect(titles[1]).toBe(`sleep RSS: ${iec(rss)}`);
    // Without -c, the default table's size columns: Swap USS PSS RSS.
    const defaults = ok(['smem', '-P', SLEEP_MATCH, '--bar', 'name']);
    const series = [...defaults.matchAll(/<rect [^>]*><title>sleep (\w+): /g)].map((m) => m[1]);
    expect(series).toEqual(['Swap', 'USS', 'PSS', 'RSS']);
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
    expect(withoutDeniedLine(r.stderr)).toBe('');
  });
});
