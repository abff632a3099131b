// A real Prometheus (Debian's prometheus package, installed by
// scripts/setup-machine.sh) for a test: on a free loopback port, with a
// temporary data directory and the scrape configuration the test gives.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from './serve';

export interface QueryResult {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface RunningPrometheus {
  /** http://127.0.0.1:PORT */
  api: string;
  /** An instant query (`/api/v1/query`) now; throws on a PromQL error. */
  query(promql: string): Promise<QueryResult[]>;
  stop(): Promise<void>;
}

/** Starts Prometheus with `config` (prometheus.yml text) in `dir`, and waits until it is ready. */
export async function startPrometheus(dir: string, config: string): Promise<RunningPrometheus> {
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, config);
  // The port is free when picked; another program could take it before
  // Prometheus does, so a Prometheus that exits at once is started again.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const child: ChildProcess = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.on('data', (d) => {
      log += d;
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.once('error', () => undefined);
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
      if (done === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    };
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      try {
        if ((await fetch(`${api}/-/ready`)).ok) return { api, query: (q) => instantQuery(api, q), stop };
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await exited;
    if (attempt === 2) throw new Error(`prometheus did not become ready: ${log}`);
  }
}

async function instantQuery(api: string, promql: string): Promise<QueryResult[]> {
  const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await r.json()) as { status: string; data: { result: QueryResult[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data.result;
}

/** A scrape configuration: one job per target, every `interval`. */
export function scrapeConfig(jobs: Record<string, string>, interval = '1s', ruleFiles: string[] = []): string {
  return [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    ...(ruleFiles.length ? ['rule_files:', ...ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
    'scrape_configs:',
    ...Object.entries(jobs).flatMap(([job, target]) => [
      `  - job_name: ${job}`,
      '    static_configs:',
      `      - targets: ['${target}']`,
    ]),
    '',
  ].join('\n');
}
