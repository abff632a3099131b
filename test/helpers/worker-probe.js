// Run by test/lifecycle.test.ts as `node worker-probe.js ROOT PID MODE`.
// The main thread starts worker threads that each load pagewalk from
// ROOT/dist and use it; MODE says how they end:
//   exit       each finishes its work and exits on its own
//   terminate  each is terminated while reads and walks are in flight
// Prints one JSON line; the exit status and signal tell whether it crashed.

const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

if (isMainThread) {
  const [root, pidArg, mode] = process.argv.slice(2);
  const pid = Number(pidArg);
  const workers = 4;
  const rounds = mode === 'terminate' ? 3 : 1;
  const results = [];
  (async () => {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        Array.from(
          { length: workers },
          (_, i) =>
            new Promise((resolve, reject) => {
              const w = new Worker(__filename, { workerData: { root, pid, mode, i } });
              w.on('message', (m) => {
                results.push(m);
                if (m.started && mode === 'terminate') setTimeout(() => w.terminate(), 5 + i * 3);
              });
              w.on('error', reject);
              w.on('exit', (code) => resolve(code));
            }),
        ),
      );
    }
    // The addon still works on the main thread after every worker is gone.
    const pw = require(path.join(root, 'dist', 'index.js'));
    const r = await pw.processMemory(pid);
    process.stdout.write(`${JSON.stringify({ results, mainRss: r.rss })}\n`);
  })().catch((err) => {
    process.stdout.write(`${JSON.stringify({ fatal: String(err?.stack) })}\n`);
    process.exitCode = 1;
  });
} else {
  const { root, pid, mode, i } = workerData;
  const pw = require(path.join(root, 'dist', 'index.js'));
  (async () => {
    const maps = pw.readMaps(pid).filter((m) => m.start < 1n << 63n);
    parentPort.postMessage({ i, started: true });
    let reads = 0;
    let rss = 0;
    const iterations = mode === 'terminate' ? 1e9 : 20;
    for (let k = 0; k < iterations; k++) {
      const h = pw.openPagemap(pid);
      const inflight = maps.slice(0, 8).map((m) => h.readAsync(m.start, Math.min(m.size / 4096, 4096)));
      for (const m of maps) reads += h.read(m.start, Math.min(m.size / 4096, 256)).length;
      for (const e of await Promise.all(inflight)) reads += e.length;
      // Left open on purpose every other time: the GC or env teardown closes it.
      if (k % 2 === 0) h.close();
      rss = (await pw.processMemory(pid)).rss;
      if (k % 5 === 0) await pw.snapshot({ pids: [pid, process.pid] });
    }
    parentPort.postMessage({ i, reads, rss });
  })();
}
