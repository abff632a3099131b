// Starts fixture processes of known memory shape and cleans them up.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const fixtureBin = (name: string): string => path.resolve(__dirname, '..', 'fixtures', 'bin', name);

export interface Region {
  start: bigint;
  pages: number;
  [extra: string]: unknown;
}

export interface Fixture {
  pid: number;
  children: number[];
  regions: Record<string, Region>;
  /** Every pid of the family: parent first. */
  pids: number[];
  stop(): void;
  cont(): void;
  kill(): Promise<void>;
}

const live = new Set<Fixture>();

/** The environment without LD_PRELOAD (the sanitizer run's libasan), for plain C programs. */
export function withoutPreload(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ...rest } = env;
  return rest;
}

export interface FixtureLaunch {
  /** Another copy of the layouts program (a unique name makes the family easy to pick out). */
  bin?: string;
  /** A program and its first arguments to start it through (it must exec the rest of its arguments). */
  via?: string[];
  /**
   * Start a private copy of the statically linked program without its vdso
   * (privateLayouts()), removed when the fixture is killed: figures that
   * hold still while other processes come and go.
   */
  isolated?: boolean;
}

/**
 * A private copy of the statically linked layouts program, named `name`, in
 * a fresh directory (remove it after). Started with FIXTURE_NO_VDSO=1 it
 * maps no page that a process outside its family maps: no library, no vdso,
 * a program file nobody else runs. So its PSS, to the byte, does not move
 * when processes start or exit elsewhere, as a dynamically linked fixture's
 * share of libc does (by hundreds of bytes, on a busy machine, between two
 * readings a few milliseconds apart).
 */
export function privateLayouts(name = 'layouts'): { bin: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-fixture-'));
  const bin = path.join(dir, name);
  fs.copyFileSync(fixtureBin('layouts-static'), bin);
  fs.chmodSync(bin, 0o755);
  return { bin, dir };
}

/** Starts test/fixtures/bin/layouts with the named regions ('all' for every one). */
export async function startFixture(
  regions: string[],
  env: Record<string, string> = {},
  launch: FixtureLaunch = {},
): Promise<Fixture> {
  const copy = launch.isolated ? privateLayouts() : undefined;
  const argv = [...(launch.via ?? []), copy?.bin ?? launch.bin ?? fixtureBin('layouts'), ...regions];
  const child: ChildProcess = spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
    // A fixture is plain C: the sanitizer run's libasan preload would give
    // it terabytes of shadow mappings and change the shape under test.
    env: { ...withoutPreload(process.env), ...(copy ? { FIXTURE_NO_VDSO: '1' } : {}), ...env },
  });
  const rl = readline.createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => {
      if (copy) fs.rmSync(copy.dir, { recursive: true, force: true });
      reject(new Error(`fixture exited with ${code}`));
    });
  });
  rl.close();
  const parsed = JSON.parse(line) as {
    pid: number;
    children: number[];
    regions: Record<string, Record<string, unknown>>;
  };
  const regionMap: Record<string, Region> = {};
  for (const [name, r] of Object.entries(parsed.regions)) {
    regionMap[name] = { ...r, start: BigInt(r.start as string), pages: r.pages as number };
  }
  const pids = [parsed.pid, ...parsed.children];
  const signalAll = (sig: NodeJS.Signals) => {
    for (const p of pids) {
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  };
  const fixture: Fixture = {
    pid: parsed.pid,
    children: parsed.children,
    regions: regionMap,
    pids,
    stop: () => signalAll('SIGSTOP'),
    cont: () => signalAll('SIGCONT'),
    kill: async () => {
      live.delete(fixture);
      signalAll('SIGCONT');
      signalAll('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      if (copy) fs.rmSync(copy.dir, { recursive: true, force: true });
    },
  };
  live.add(fixture);
  return fixture;
}

export async function killAllFixtures(): Promise<void> {
  await Promise.all([...live].map((f) => f.kill()));
}

/** Waits until cond() holds or the time runs out. */
export async function waitFor(cond: () => boolean, ms: number, step = 100): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, step));
  }
  return cond();
}
