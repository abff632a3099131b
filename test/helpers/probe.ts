// test/helpers/measure-probe.js as a child process: measures given
// processes under limits or switches set on it alone (a pids cgroup, no
// CAP_SYS_NICE, an environment switch, strace), when told to, and hands
// back its figures beside the kernel's smaps_rollup read just after.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { expect } from 'vitest';
import { repoRoot } from './dist';

const PROBE = path.join(__dirname, 'measure-probe.js');

/** Figures in smaps_rollup's kB, ours or the kernel's (Rss, Pss, ..., Private). */
type Kb = Record<string, number>;
export interface ProbeOutput {
  threads: number;
  memory: { pid: number; kb: Kb; kernel: Kb; source: string; timings: Record<string, number> }[];
  snapshot: {
    gone: number[];
    timings: Record<string, number>;
    processes: { pid: number; kb: Kb; kernel: Kb; source: string }[];
  } | null;
  error?: Record<string, unknown>;
  fatal?: Record<string, unknown>;
}

export interface Probe {
  child: ChildProcess;
  /** Sends the line that starts the measurement; resolves with its JSON. */
  go(): Promise<ProbeOutput>;
}

/**
 * Starts the probe (through `via`, a command that execs the rest, with
 * `env` added to this process's) and waits for its "ready". The caller
 * builds dist first (buildDist()).
 */
export async function startProbe(
  via: string[],
  options: object,
  pids: number[],
  env: Record<string, string> = {},
): Promise<Probe> {
  const argv = [...via, process.execPath, PROBE, repoRoot, JSON.stringify(options), ...pids.map(String)];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const rl = readline.createInterface({ input: child.stdout! });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  rl.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`measure probe exited (${code ?? signal})`))),
  );
  exited.catch(() => {});
  const nextLine = () =>
    Promise.race([
      new Promise<string>((r) => (lines.length > 0 ? r(lines.shift() as string) : waiting.push(r))),
      exited,
    ]);
  const ready = await nextLine();
  if (ready !== 'ready') throw new Error(`measure probe said ${ready}`);
  return {
    child,
    go: async () => {
      child.stdin!.write('go\n');
      return JSON.parse(await nextLine()) as ProbeOutput;
    },
  };
}

export async function stopProbe(p: Probe): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  await exited;
}

/** Expects every report of the probe to equal the kernel's smaps_rollup of its process, read just after. */
export function expectEqualsRollup(out: ProbeOutput, pids: number[]): void {
  expect(out.error ?? out.fatal ?? null).toBeNull();
  expect(out.memory.map((m) => m.pid)).toEqual(pids);
  for (const m of out.memory) expect({ pid: m.pid, ...m.kb }).toEqual({ pid: m.pid, ...m.kernel });
  expect(out.snapshot?.gone).toEqual([]);
  expect(out.snapshot?.processes.map((p) => p.pid).sort()).toEqual([...pids].sort());
  for (const p of out.snapshot?.processes ?? []) expect({ pid: p.pid, ...p.kb }).toEqual({ pid: p.pid, ...p.kernel });
}
