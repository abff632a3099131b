// Run by test/leaks.test.ts as `node --expose-gc gc-probe.js ROOT PID N`:
// opens N pagemap handles and never closes them, drops them, collects, and
// prints the descriptor counts seen: before, with the handles, after GC.

const fs = require('node:fs');
const path = require('node:path');

const [root, pidArg, nArg] = process.argv.slice(2);
const pw = require(path.join(root, 'dist', 'index.js'));
const pid = Number(pidArg);
const n = Number(nArg);
const fds = () => fs.readdirSync('/proc/self/fd').length;
const tick = () => new Promise((r) => setImmediate(r));

(async () => {
  // Warm up so that lazily opened descriptors are counted in the baseline.
  pw.openPagemap(pid).close();
  await pw.processMemory(pid);
  global.gc();
  await tick();
  await new Promise((r) => setTimeout(r, 50));
  const baseline = fs.readdirSync('/proc/self/fd');
  const before = baseline.length;
  let handles = [];
  for (let i = 0; i < n; i++) {
    const h = pw.openPagemap(pid);
    h.read(0, 1);
    if (i % 2) await h.readAsync(0, 1);
    handles.push(h);
  }
  // A walk abandoned half-way (generator never finished) must not leak either.
  const it = pw.walkSync(pid, { chunkPages: 1 });
  it.next();
  const during = fds();
  handles = null;
  let after = fds();
  for (let i = 0; i < 50 && after > before; i++) {
    global.gc();
    await tick();
    await new Promise((r) => setTimeout(r, 10));
    after = fds();
  }
  // The abandoned generator still holds its handle until it is closed.
  it.return();
  let final = fds();
  for (let i = 0; i < 50 && final > before; i++) {
    global.gc();
    await tick();
    final = fds();
  }
  const extra = fs.readdirSync('/proc/self/fd').filter((f) => !baseline.includes(f));
  process.stdout.write(`${JSON.stringify({ before, during, after, final, extra })}\n`);
})();
