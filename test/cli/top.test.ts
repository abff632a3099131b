// pagewalk top: batch frames checked against snapshot() and against growth
// the grow fixture makes between two frames; the interactive view driven
// through a pseudo-terminal (script(1)) with keys, and the terminal checked
// to be as it was afterwards.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../../lib/index';
import { cli, eventually, root, TAG } from '../helpers/cli';
import { type Grower, startGrower } from '../helpers/grow';

// The fixture's reserve (its argument) tags our growers' command lines.
const RESERVE = 20_000 + (Number(TAG) % 1000);
const MATCH = `grow ${RESERVE}$`;
const growers: Grower[] = [];

async function grower(): Promise<Grower> {
  const g = await startGrower(RESERVE);
  growers.push(g);
  return g;
}

beforeAll(() => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
});

afterEach(async () => {
  await Promise.all(growers.splice(0).map((g) => g.kill()));
});

interface Frame {
  header: string[];
  columns: string[];
  rows: Record<string, string>[];
}

/** Batch output: frames separated by blank lines, each three header lines, a blank, a table. */
function parseFrames(text: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of text.split(/\n\n(?=pagewalk top - )/)) {
    const lines = block.trimEnd().split('\n');
    const blank = lines.indexOf('');
    const columns = lines[blank + 1].trim().split(/\s+/);
    const rows = lines.slice(blank + 2).map((l) => {
      const cells = l.trim().split(/\s+/);
      // The command (last) may hold spaces.
      const row: Record<string, string> = {};
      columns.forEach((c, i) => {
        row[c] = i === columns.length - 1 ? cells.slice(i).join(' ') : cells[i];
      });
      return row;
    });
    frames.push({ header: lines.slice(0, blank), columns, rows });
  }
  return frames;
}

/**
 * Runs the command in this process, its stdout captured. When a frame is
 * written, `between(frameNumber)` runs before the write completes: top waits
 * for its output to drain (as for a slow reader) before the next snapshot,
 * so what `between` does lands between two frames.
 */
async function topHere(
  args: string[],
  between?: (frame: number) => Promise<void>,
): Promise<{ code: number; out: string }> {
  const { main } = createRequire(__filename)(path.join(root, 'dist', 'cli', 'main.js')) as {
    main: (argv: string[]) => Promise<number>;
  };
  let out = '';
  let frames = 0;
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    frames++;
    if (!between) return true;
    between(frames).then(() => process.stdout.emit('drain'));
    return false;
  }) as typeof process.stdout.write;
  try {
    const code = await main(['node', 'pagewalk', 'top', ...args]);
    return { code, out };
  } finally {
    process.stdout.write = write;
  }
}

describe('pagewalk top -b', () => {
  it('prints N plain frames whose figures are those of snapshot()', async () => {
    const a = await grower();
    const b = await grower();
    await a.grow(300);
    await b.grow(40);
    await eventually(async () => {
      const r = await topHere(['-b', '-n', '2', '-d', '0', '-P', MATCH]);
      expect(r.code).toBe(0);
      // Same observer (this process), one right after the other.
      const snap = await snapshot({ pids: [a.pid, b.pid], excludeSelf: true });
      // No cursor control in batch mode.
      expect(r.out.includes('\x1b')).toBe(false);
      const frames = parseFrames(r.out);
      expect(frames).toHaveLength(2);
      expect(frames[0].header[0]).toMatch(/^pagewalk top - \d\d:\d\d:\d\d {2}every 0s {2}frame 1\/2 {2}sorted by PSS/);
      expect(frames[1].header[0]).toMatch(/frame 2\/2/);
      expect(frames[1].header[1]).toMatch(/^Mem: \S+ total, \S+ free, \S+ available/);
      // Every size in the header has its unit (a change of 84 bytes once read "change -84.0").
      expect(frames[1].header[2]).toMatch(
        /^Processes: 2 measured, 0 started, 0 exited; PSS [\d.]+[BKMGT], change (0|[+-][\d.]+[BKMGT]), since start (0|[+-][\d.]+[BKMGT])$/,
      );
      expect(frames[1].columns).toEqual([
        'PID',
        'User',
        'Swap',
        'USS',
        'PSS',
        'RSS',
        'Change',
        'SinceStart',
        'Command',
      ]);
      // Sorted by PSS, largest first: a holds 300 pages, b 40.
      expect(frames[1].rows.map((row) => Number(row.PID))).toEqual([a.pid, b.pid]);
      for (const row of frames[1].rows) {
        const p = snap.processes.find((s) => s.pid === Number(row.PID));
        expect(p, `pid ${row.PID}`).toBeDefined();
        const kb = (v: number) => String(Math.floor(v / 1024));
        expect([row.Swap, row.USS, row.PSS, row.RSS]).toEqual([
          kb(p?.swap ?? -1),
          kb(p?.uss ?? -1),
          kb(p?.pss ?? -1),
          kb(p?.rss ?? -1),
        ]);
        expect(row.Command).toBe(`${path.join(root, 'test', 'fixtures', 'bin', 'grow')} ${RESERVE}`);
      }
    });
  });

  it('shows the change since the last frame and since the start', async () => {
    const a = await grower();
    const b = await grower();
    // RSS: what PSS would show too, without the drift of shared libc pages.
    const r = await topHere(['-b', '-n', '3', '-d', '0', '-s', 'rss', '-P', MATCH], async (frame) => {
      if (frame === 1) await a.grow(256);
      if (frame === 2) await b.grow(64);
    });
    expect(r.code).toBe(0);
    const frames = parseFrames(r.out);
    expect(frames).toHaveLength(3);
    expect(frames[0].header[0]).toMatch(/sorted by RSS, changes of RSS/);
    const row = (f: number, pid: number) => frames[f].rows.find((x) => Number(x.PID) === pid);
    expect([row(0, a.pid)?.Change, row(0, a.pid)?.SinceStart]).toEqual(['0', '0']);
    expect([row(1, a.pid)?.Change, row(1, a.pid)?.SinceStart]).toEqual(['+1024', '+1024']);
    expect([row(1, b.pid)?.Change, row(1, b.pid)?.SinceStart]).toEqual(['0', '0']);
    expect([row(2, a.pid)?.Change, row(2, a.pid)?.SinceStart]).toEqual(['0', '+1024']);
    expect([row(2, b.pid)?.Change, row(2, b.pid)?.SinceStart]).toEqual(['+256', '+256']);
    // Grouped by name, the two growers are one row.
    const g = await topHere(['-b', '-n', '2', '-d', '0', '--by', 'name', '-s', 'rss', '-P', MATCH], async (frame) => {
      if (frame === 1) await b.grow(10);
    });
    const grouped = parseFrames(g.out);
    expect(grouped[1].columns).toEqual(['Name', 'Count', 'Only', 'Swap', 'USS', 'PSS', 'RSS', 'Change', 'SinceStart']);
    expect(grouped[1].rows).toHaveLength(1);
    expect(grouped[1].rows[0]).toMatchObject({ Name: 'grow', Count: '2', Change: '+40' });
    // What the two alone map holds at least what each alone maps, and the pages they share with each other.
    expect(Number(grouped[1].rows[0].Only)).toBeGreaterThanOrEqual(Number(grouped[1].rows[0].USS));
  });

  it('keeps going when a process exits between frames', async () => {
    const a = await grower();
    const b = await grower();
    const r = await topHere(['-b', '-n', '2', '-d', '0', '-P', MATCH], async (frame) => {
      if (frame === 1) await b.kill();
    });
    const frames = parseFrames(r.out);
    expect(frames[0].rows.map((x) => Number(x.PID)).sort()).toEqual([a.pid, b.pid].sort());
    expect(frames[1].rows.map((x) => Number(x.PID))).toEqual([a.pid]);
    expect(frames[1].header[2]).toMatch(/^Processes: 1 measured, 0 started, 1 exited/);
  });

  it('rejects bad options', () => {
    for (const args of [
      ['-d', 'x'],
      ['-d', '-1'],
      ['-n', '0'],
      ['--by', 'colour'],
      ['-s', 'vss'],
    ]) {
      const r = spawnSync(process.execPath, [cli, 'top', '-b', ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^pagewalk: /);
    }
  });
});

describe('pagewalk top on a terminal', () => {
  let term: ChildProcess | undefined;
  afterAll(() => term?.kill('SIGKILL'));

  /**
   * Runs top under script(1), which gives it a pseudo-terminal and passes
   * our keys to it, then `stty -a` in the same terminal. Resolves with
   * everything the terminal showed.
   */
  async function onTerminal(
    keys: (screen: () => string, send: (s: string) => void) => Promise<void>,
    args = `-d 0.2 -P '${MATCH}'`,
    setup = 'true',
  ) {
    const command = `${setup}; ${process.execPath} ${cli} top ${args}; code=$?; stty -a; exit $code`;
    term = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let screen = '';
    term.stdout?.on('data', (d) => {
      screen += d.toString('latin1');
    });
    const exited = new Promise<number | null>((resolve) => term?.once('exit', resolve));
    await keys(
      () => screen,
      (s) => term?.stdin?.write(s),
    );
    const code = await exited;
    term.stdin?.end();
    return { code, screen };
  }

  async function until(screen: () => string, pattern: RegExp): Promise<void> {
    // Bounded by the test's timeout: a screen that never shows it fails the test.
    while (!pattern.test(screen())) await new Promise((r) => setTimeout(r, 50));
  }

  for (const [name, quitKey] of [
    ['q', 'q'],
    ['Ctrl-C', '\x03'],
  ]) {
    it(`changes the sort column on a key and restores the terminal on ${name}`, async () => {
      const a = await grower();
      await a.grow(10);
      const { code, screen } = await onTerminal(async (shown, send) => {
        await until(shown, /frame 1 {2}sorted by PSS/);
        send('r');
        await until(shown, /sorted by RSS, changes of RSS/);
        send('u');
        await until(shown, /sorted by USS, changes of USS/);
        send(quitKey);
      });
      expect(code).toBe(0);
      // The alternate screen was entered with the cursor hidden, and left with it shown again...
      const enter = screen.indexOf('\x1b[?1049h\x1b[?25l');
      const leave = screen.lastIndexOf('\x1b[?25h\x1b[?1049l');
      expect(enter).toBeGreaterThanOrEqual(0);
      expect(leave).toBeGreaterThan(enter);
      expect(screen.slice(enter, leave)).toContain(String(a.pid));
      expect(screen.slice(enter, leave)).toMatch(/Keys: p u r s/);
      // ...and nothing drew on it after that: what follows is stty's report,
      // in which the line discipline is back to cooked mode with echo.
      const after = screen.slice(leave);
      expect(after.includes('\x1b[H')).toBe(false);
      expect(after).toMatch(/(^|[\s;])icanon\b/);
      expect(after).toMatch(/(^|[\s;])echo\b/);
      expect(after).not.toMatch(/-icanon|(^|\s)-echo\b/);
    });
  }

  it('scrolls a table longer than the screen with the arrow, j/k, End and Home keys', async () => {
    // Every process of the machine on a 12-line terminal: 5 rows of the
    // table fit, and even a quiet machine has more processes than 7.
    const { code, screen } = await onTerminal(
      async (shown, send) => {
        await until(shown, /Rows 1-(\d+) of \d+;/);
        const [, page, total] = (/Rows 1-(\d+) of (\d+);/.exec(shown()) ?? []).map(Number);
        expect(page).toBe(5);
        expect(total).toBeGreaterThan(page + 2);
        send('\x1b[B');
        await until(shown, new RegExp(`Rows 2-${page + 1} of`));
        send('j');
        await until(shown, new RegExp(`Rows 3-${page + 2} of`));
        send('k');
        await until(shown, new RegExp(`Rows 2-${page + 1} of`));
        send('\x1b[F');
        await until(shown, /Rows \d+-(\d+) of \1;/);
        send('\x1b[H');
        await until(shown, /Rows 1-\d+ of \d+;(?![\s\S]*Rows \d)/);
        send('q');
      },
      '-d 0.5',
      'stty rows 12 cols 120',
    );
    expect(code).toBe(0);
    expect(screen).toMatch(/Rows \d+-(\d+) of \1;/);
  });
});
