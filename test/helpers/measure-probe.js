// Run by test/limits.test.ts and test/fallbacks.test.ts, under limits or
// switches the test sets on this process (a pids cgroup at its limit, no
// CAP_SYS_NICE, PAGEWALK_DISABLE_*):
//   node measure-probe.js ROOT OPTIONS_JSON PID...
// Loads pagewalk from ROOT/dist and measures the first PID once, so that
// the thread pool and everything loaded lazily are in place; prints
// "ready"; then, at a line on stdin, measures processMemory of each PID and
// a snapshot of all of them with OPTIONS_JSON (AccountingOptions), and
// prints one JSON line: each report's figures in kB and timings next to
// the kernel's smaps_rollup read just after, or the error.

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const [root, optionsJson, ...pidArgs] = process.argv.slice(2);
const pids = pidArgs.map(Number);
const options = JSON.parse(optionsJson);
const pw = require(path.join(root, 'dist', 'index.js'));

// smaps_rollup's keys and ours, as test/helpers/oracle.ts compares them.
const KEYS = [
  ['rss', 'Rss'],
  ['pss', 'Pss'],
  ['pssAnon', 'Pss_Anon'],
  ['pssFile', 'Pss_File'],
  ['pssShmem', 'Pss_Shmem'],
  ['swap', 'Swap'],
  ['anonymous', 'Anonymous'],
  ['ksm', 'KSM'],
  ['anonHugePages', 'AnonHugePages'],
];
function ourKb(r) {
  const out = Object.fromEntries(KEYS.map(([ours, theirs]) => [theirs, Math.floor(r[ours] / 1024)]));
  out.Private = Math.floor(r.uss / 1024);
  return out;
}
function kernelKb(pid) {
  const k = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) k[m[1]] = Number(m[2]);
  }
  const out = Object.fromEntries(KEYS.map(([, theirs]) => [theirs, k[theirs] ?? 0]));
  out.Private = (k.Private_Clean ?? 0) + (k.Private_Dirty ?? 0);
  return out;
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// Measures again while shared pages move under the figures (other
// processes mapping and unmapping the same libraries), up to ten times.
async function measured(pid) {
  let r;
  let kernel;
  for (let i = 0; i < 10; i++) {
    r = await pw.processMemory(pid, options);
    kernel = kernelKb(pid);
    if (same(ourKb(r), kernel)) break;
  }
  return { pid, kb: ourKb(r), kernel, source: r.source, timings: r.timings };
}
async function snapshotted() {
  let s;
  let kernel;
  for (let i = 0; i < 10; i++) {
    s = await pw.snapshot({ ...options, pids });
    kernel = s.processes.map((p) => kernelKb(p.pid));
    if (s.processes.every((p, j) => same(ourKb(p), kernel[j]))) break;
  }
  return {
    gone: s.gone,
    timings: s.timings,
    processes: s.processes.map((p, j) => ({ pid: p.pid, kb: ourKb(p), kernel: kernel[j], source: p.source })),
  };
}

function errorFields(err) {
  return { name: err.name, code: err.code, errno: err.errno, syscall: err.syscall, message: err.message };
}

(async () => {
  await pw.processMemory(pids[0], options);
  process.stdout.write('ready\n');
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once('line', resolve));
  rl.close();
  const out = { threads: fs.readdirSync('/proc/self/task').length, memory: [], snapshot: null };
  try {
    for (const pid of pids) out.memory.push(await measured(pid));
    out.snapshot = await snapshotted();
  } catch (err) {
    out.error = errorFields(err);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((err) => {
  process.stdout.write(`${JSON.stringify({ fatal: errorFields(err), stack: err.stack })}\n`);
  process.exitCode = 1;
});
