// Run by test/observer.test.ts as the observer: a Node process that maps
// the same node binary and libc copies as the targets it measures.
//   node observer-probe.js ROOT PID...
// Prints one JSON line: each target measured with and without excludeSelf,
// its smaps_rollup of the moment (this observer included), a snapshot of
// the targets (group and matrix) both ways, and the observer's own report.

const fs = require('node:fs');
const path = require('node:path');

const [root, ...pidArgs] = process.argv.slice(2);
const pids = pidArgs.map(Number);
const pw = require(path.join(root, 'dist', 'index.js'));

function rollupKb(p) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

const figures = (r) => ({
  pid: r.pid,
  observer: r.observer,
  source: r.source,
  partial: r.partial,
  rss: r.rss,
  pss: r.pss,
  uss: r.uss,
  shared: r.shared,
  swap: r.swap,
  pssAnon: r.pssAnon,
  pssFile: r.pssFile,
  pssShmem: r.pssShmem,
  anonymous: r.anonymous,
  ksm: r.ksm,
  anonHugePages: r.anonHugePages,
});

async function snap(excludeSelf, extra = [], members = pids) {
  const s = await pw.snapshot({
    pids: [...pids, ...extra],
    excludeSelf,
    groups: [{ name: 'targets', match: members }],
    matrix: true,
  });
  const g = s.groups[0];
  return {
    observer: s.observer,
    processes: s.processes.map(figures),
    group: { only: g.only, sharedOutside: g.sharedOutside, distinct: g.distinct },
    matrix: { pids: s.matrix.pids, bytes: [...s.matrix.bytes] },
  };
}

(async () => {
  const out = { targets: {} };
  for (const pid of pids) {
    const included = figures(await pw.processMemory(pid));
    const rollup = rollupKb(pid);
    const excluded = figures(await pw.processMemory(pid, { excludeSelf: true }));
    out.targets[pid] = { included, rollup, excluded };
  }
  // The targets share the [vdso] page with every process on the machine, so
  // its mapcount (and a byte of their PSS) moves whenever a process starts or
  // exits. Compare a snapshot with processMemory() taken right after it, and
  // take both again until the machine held still between them.
  for (let attempt = 0; attempt < 5; attempt++) {
    out.snapshotExcluded = await snap(true);
    const again = {};
    for (const pid of pids) again[pid] = figures(await pw.processMemory(pid, { excludeSelf: true }));
    const held = out.snapshotExcluded.processes.every((p) => JSON.stringify(p) === JSON.stringify(again[p.pid]));
    for (const pid of pids) out.targets[pid].excluded = again[pid];
    if (held) break;
  }
  out.snapshotIncluded = await snap(false);
  // The caller measured along with the targets: its own figures stay the kernel's.
  out.withSelf = await snap(true, [process.pid]);
  // A group that holds the caller, both ways.
  const all = [...pids, process.pid];
  out.groupWithSelf = { excluded: (await snap(true, [process.pid], all)).group };
  out.groupWithSelf.included = (await snap(false, [process.pid], all)).group;
  out.selfRollup = rollupKb(process.pid);
  out.selfAlone = figures(await pw.processMemory(process.pid, { excludeSelf: true }));
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((err) => {
  process.stdout.write(`${JSON.stringify({ fatal: err.message, stack: err.stack })}\n`);
  process.exitCode = 1;
});
