// Short-lived and changing processes for the hardening tests: every process
// started here is tracked and killed by killAllProcs().
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { fixtureBin } from './fixture';

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** The first line the process printed. */
  line: string;
  kill(): Promise<void>;
}

const live = new Set<Proc>();

/** Spawns a program and waits for its first line of output. */
export async function startProc(file: string, args: string[], options: SpawnOptions = {}): Promise<Proc> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  const rl = readline.createInterface({ input: child.stdout! });
  const proc: Proc = {
    child,
    pid: child.pid as number,
    line: '',
    kill: async () => {
      live.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
  live.add(proc);
  try {
    proc.line = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      child.once('error', reject);
      child.once('exit', (code, sig) => reject(new Error(`${file} exited with ${code ?? sig} before printing`)));
    });
  } catch (err) {
    await proc.kill();
    throw err;
  } finally {
    rl.close();
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout?.resume();
  return proc;
}

/** Starts test/fixtures/bin/churn in a mode (see churn.c). */
export function startChurn(args: string[], options: SpawnOptions = {}): Promise<Proc> {
  return startProc(fixtureBin('churn'), args, options);
}

export async function killAllProcs(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** Open descriptors of this process. */
export function fdCount(pid: number | 'self' = 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of this process in kB (VmRSS). */
export function rssKb(pid: number | 'self' = 'self'): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** The pid of some kernel thread (kthreadd's children have PF_KTHREAD). */
export function kernelThreadPid(): number {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || name === '1') continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
      if (flags & 0x00200000) return Number(name);
    } catch {
      // gone
    }
  }
  throw new Error('no kernel thread found');
}

/** A pid that names no process now (the highest free pid below pid_max). */
export function freePid(): number {
  const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let p = max - 1; p > 1; p--) if (!fs.existsSync(`/proc/${p}`)) return p;
  throw new Error('no free pid');
}

/**
 * Running under scripts/sanitize.sh: libasan is preloaded into this process
 * and every child, which changes memory figures (shadow memory, the
 * allocator's quarantine) but not descriptors or correctness.
 */
export const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');
