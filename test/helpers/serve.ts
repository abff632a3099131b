// `pagewalk serve` started for a test on a free loopback port (port 0: the
// kernel picks, the command prints the address), and its exposition parsed.
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { cli } from './cli';

export interface Served {
  child: ChildProcess;
  pid: number;
  /** http://127.0.0.1:PORT */
  base: string;
  port: number;
  /** Resolves with the exit code (or signal name) once the command has exited. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

const live = new Set<Served>();

export async function startServe(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [cli, 'serve', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal as string))),
  );
  const rl = readline.createInterface({ input: child.stdout! });
  const line = await Promise.race([
    new Promise<string>((resolve) => rl.once('line', resolve)),
    exited.then((code) => {
      throw new Error(`pagewalk serve exited with ${code}: ${stderr}`);
    }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('pagewalk serve did not start')), 20_000)),
  ]);
  rl.close();
  child.stdout?.resume();
  const m = /^pagewalk: serving http:\/\/127\.0\.0\.1:(\d+)\/metrics$/.exec(line);
  if (!m) throw new Error(`unexpected first line: ${line}`);
  const served: Served = {
    child,
    pid: child.pid as number,
    port: Number(m[1]),
    base: `http://127.0.0.1:${m[1]}`,
    exited,
    stop: async () => {
      live.delete(served);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  live.add(served);
  return served;
}

export async function stopAllServes(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

/** The samples of an exposition: `name{labels}` -> value. */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Samples of one metric, keyed by the value of one label. */
export function byLabel(all: Map<string, number>, metric: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${metric}\\{.*\\b${label}="((?:[^"\\\\]|\\\\.)*)"`);
  for (const [k, v] of all) {
    const m = re.exec(k);
    if (m) out.set(m[1], v);
  }
  return out;
}

/** A loopback port nothing listens on at the moment. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
