// The grow fixture (test/fixtures/grow.c): a process whose anonymous memory
// grows and shrinks by a known number of pages when told to.
import { type ChildProcess, spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { fixtureBin } from './fixture';

export interface Grower {
  pid: number;
  /** Start of the fixture's reserved mapping. */
  address: bigint;
  /** Touches n more pages; resolves with the pages now touched. */
  grow(n: number): Promise<number>;
  /** Drops the last n pages touched; resolves with the pages now touched. */
  shrink(n: number): Promise<number>;
  kill(): Promise<void>;
}

/** busy: a second thread spins meanwhile (GROW_BUSY=1), so that a paced walk of it pauses. */
export async function startGrower(reservePages = 16384, { busy = false } = {}): Promise<Grower> {
  const child: ChildProcess = spawn(fixtureBin('grow'), [String(reservePages)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: busy ? { ...process.env, GROW_BUSY: '1' } : process.env,
  });
  const rl = readline.createInterface({ input: child.stdout! });
  const lines: string[] = [];
  const waiting: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  let exit: Error | undefined;
  rl.on('line', (line) => {
    const w = waiting.shift();
    if (w) w.resolve(line);
    else lines.push(line);
  });
  child.once('exit', (code, signal) => {
    exit = new Error(`grow fixture exited (${code ?? signal})`);
    for (const w of waiting.splice(0)) w.reject(exit);
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) resolve(l);
      else if (exit) reject(exit);
      else waiting.push({ resolve, reject });
    });
  const ready = (await nextLine()).split(' ');
  if (ready[0] !== 'ready') throw new Error(`grow fixture said ${ready.join(' ')}`);
  const command = async (text: string) => {
    child.stdin!.write(`${text}\n`);
    const reply = (await nextLine()).split(' ');
    if (reply[0] !== 'pages') throw new Error(`grow fixture said ${reply.join(' ')}`);
    return Number(reply[1]);
  };
  // The first command's own cost (sscanf's first call touches about 16
  // pages): paid here, so that growth from now on is only what is asked.
  await command('grow 0');
  return {
    pid: Number(ready[1]),
    address: BigInt(ready[2]),
    grow: (n) => command(`grow ${n}`),
    shrink: (n) => command(`shrink ${n}`),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
