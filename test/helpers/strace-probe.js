// Run under strace by test/privilege.test.ts: loads pagewalk from ROOT/dist,
// warms up, then between two marker opens (of paths that do not exist)
// exercises every reading entry point, so that the trace shows exactly what
// the library itself opens and runs.

const fs = require('node:fs');
const path = require('node:path');

const root = process.argv[2];
const pid = Number(process.argv[3]);
const pw = require(path.join(root, 'dist', 'index.js'));

function marker(name) {
  try {
    fs.openSync(`/nonexistent-pagewalk-marker-${name}`, 'r');
  } catch {
    // expected: only the openat in the trace matters
  }
}

(async () => {
  // Warm-up: node's lazily loaded internals (fs.promises, worker pool).
  await fs.promises.readFile('/proc/self/stat');
  marker('begin');
  await pw.snapshot({ matrix: true, groups: [{ name: 'p', match: [pid] }] });
  await pw.processMemory(pid, { mappings: true });
  for await (const c of pw.walk(pid)) void c;
  for (const c of pw.walkSync(pid)) void c;
  pw.readSmaps(pid);
  pw.readSmapsRollup(pid);
  pw.pageFeatures();
  pw.kpageReadable();
  pw.hasSysAdmin();
  pw.processInfo(pid);
  const h = pw.openPagemap(pid);
  await h.readAsync(0, 16);
  h.close();
  marker('end');
  process.stdout.write('ok\n');
})();
