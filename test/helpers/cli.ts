// What the tests of the pagewalk command share (test/cli/*.test.ts): running
// it as a child process, on processes started and stopped here, and reading
// the kernel's smaps_rollup to check it against.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

export const root = path.resolve(__dirname, '..', '..');
export const cli = path.join(root, 'dist', 'cli', 'main.js');
export const TAG = String(7_000_000 + (process.pid % 1_000_000));
/** Matches our processes but not the command lines that carry it (smem lists itself). */
export const MATCH = `^sleep ${TAG}$|holde[r]${TAG}`;
export const SLEEP_MATCH = `^sleep ${TAG}$`;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(args: string[], wrap: string[] = [], cliPath = cli): Run {
  const argv = [...wrap, process.execPath, cliPath, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The one line counting the processes a command could not read (naming them
 * with --verbose). Even root may meet some (a sandbox's init, processes of
 * another user namespace): the command counts them rather than drop them
 * silently.
 */
export const DENIED_LINE =
  /^pagewalk: warning: (\d+) process(?:es)? could not be read \(permission denied\) and (?:is|are) left out(?:; run as root to include them)?(?:: (.+)| \(--verbose names them\))\n/m;

/** stderr without the line of unreadable processes, which must not name any of `ours`. */
export function withoutDeniedLine(stderr: string, ours: number[] = fx.pids): string {
  const m = DENIED_LINE.exec(stderr);
  if (!m) return stderr;
  if (m[2] === undefined) return stderr.replace(DENIED_LINE, '');
  const named = [...m[2].matchAll(/\(([\d ]+)\)/g)].flatMap((g) => g[1].split(' ').map(Number));
  expect(named).toHaveLength(Number(m[1]));
  for (const pid of ours) expect(named).not.toContain(pid);
  return stderr.replace(DENIED_LINE, '');
}

export function ok(args: string[]): string {
  const r = run(args);
  if (r.code !== 0) throw new Error(`pagewalk ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  expect(withoutDeniedLine(r.stderr)).toBe('');
  return r.stdout;
}

export interface InProcess {
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
// The snapshot takes the command's view: observer excluded (its default) or,
// with --include-self, the kernel's view of the moment, which is also the
// one smaps_rollup gives.
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
  const excludeSelf = !args.includes('--include-self');
  const s = await snapshot(re ? { excludeSelf, filter: (p) => !p.kernelThread, groups: [{ name: 'g', match: (p) => re.test(p.name) || re.test(p.command) }] } : { excludeSelf, pids });
  const snap = s.processes.filter((p) => pids.includes(p.pid)).map((p) => ({ pid: p.pid, pss: p.pss, uss: p.uss, rss: p.rss, vss: p.vss, swap: p.swap }));
  const g = s.groups[0];
  write(JSON.stringify({ code, out, rollups, snap, group: g && { only: g.only, sharedOutside: g.sharedOutside, pss: g.totals.pss, pids: g.pids } }));
});
`;

export function inProcess(args: string[], pidList: number[], group?: string): InProcess {
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
export function rollup(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function mapsCount(pid: number): number {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').length;
}

/**
 * Other processes on the machine may map or unmap the libraries ours share
 * while we compare, shifting PSS; a comparison that keeps failing is real.
 */
export async function eventually(check: () => void | Promise<void>, tries = 6): Promise<void> {
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

export const children: ChildProcess[] = [];
/** Process groups started here (leaders' pids). */
export const groups: number[] = [];

export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}
export const stopped = new Set<number>();
/** The processes every command test measures: two sleeps and a perl holding 16 MiB, all stopped. */
export const fx = { sleeps: [] as number[], holder: 0, pids: [] as number[] };

export function start(cmd: string, args: string[], wrap: string[] = []): ChildProcess {
  const argv = [...wrap, cmd, ...args];
  const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return c;
}

export async function execed(pid: number, cmdline: string): Promise<void> {
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

export function stop(pid: number): void {
  process.kill(pid, 'SIGSTOP');
  stopped.add(pid);
}

/**
 * Builds dist/, starts and stops the processes in `fx` before the file's
 * tests, and ends everything started here after them. Call once per test file.
 */
export function useCliFixtures(): void {
  beforeAll(async () => {
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
    for (let i = 0; i < 2; i++) {
      const c = start('sleep', [TAG]);
      await execed(c.pid as number, `sleep ${TAG}`);
      fx.sleeps.push(c.pid as number);
    }
    // perl shares only libc with node and python: the measurers barely touch its PSS.
    const h = start('perl', ['-e', '$x = "a" x (16 << 20); $| = 1; print "ready\\n"; sleep 100000;', `holder${TAG}`]);
    await new Promise<void>((resolve, reject) => {
      h.stdout?.once('data', () => resolve());
      h.once('exit', () => reject(new Error('holder exited')));
    });
    fx.holder = h.pid as number;
    fx.sleeps = fx.sleeps.sort((a, b) => a - b);
    fx.pids = [...fx.sleeps, fx.holder].sort((a, b) => a - b);
    for (const p of fx.pids) stop(p);
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
}

export interface JsonProcess {
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
