// The addon in worker threads: several at once, each loading the package,
// and each worker's exit or termination unloading it cleanly.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, repoRoot } from './helpers/dist';
import { killAllProcs, type Proc, startChurn } from './helpers/procs';

const run = promisify(execFile);
let idle: Proc;
beforeAll(async () => {
  buildDist();
  idle = await startChurn(['idle']);
});
afterAll(killAllProcs);

async function probe(mode: 'exit' | 'terminate'): Promise<{ results: Record<string, unknown>[]; mainRss: number }> {
  // In a child process: a crash there is an exit signal here, not a dead test runner.
  const { stdout } = await run(
    process.execPath,
    [path.join(__dirname, 'helpers', 'worker-probe.js'), repoRoot, String(idle.pid), mode],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  const out = JSON.parse(stdout.trim().split('\n').pop() as string);
  expect(out.fatal).toBeUndefined();
  return out;
}

describe('worker_threads', () => {
  it('four workers read, walk and measure at once, then exit on their own', async () => {
    const out = await probe('exit');
    const done = out.results.filter((r) => 'reads' in r);
    expect(done.length).toBe(4);
    const rss = new Set(done.map((r) => r.rss));
    expect(rss.size).toBe(1); // a stopped... idle process: every worker saw the same
    expect(out.mainRss).toBe([...rss][0]);
    for (const r of done) expect(r.reads as number).toBeGreaterThan(0);
  });

  it('workers terminated with reads and walks in flight: no crash, the main thread carries on', async () => {
    const out = await probe('terminate');
    expect(out.results.filter((r) => r.started).length).toBe(12);
    expect(out.mainRss).toBeGreaterThan(0);
  });
});
