// One benchmark case, run in its own process by benchmarks/run.js so that
// no case inherits another's heap, JIT state or thread pool:
//
//   node benchmarks/case.js '<json spec>'
//
// spec: { kind, pids, runs, warmup, options }. Prints one JSON line:
// { timesMs: [...], cpuMs: [...], hwmBeforeKb, hwmAfterFirstKb, hwmAfterKb, timings: [...], extra }.
// cpuMs: this process's CPU time (user + system, every thread: the libuv
// pool's and the library's own included) over each measured run.
// timings: the library's own breakdown (processMemory() and snapshot()
// results carry `timings`, ms per phase) of each measured run; summed over
// the pids for processMemory.
const fs = require('node:fs');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');

const spec = JSON.parse(process.argv[2]);
const pw = require('../dist');

function vmHwmKb() {
  const m = /^VmHWM:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) : -1;
}

// ---------------------------------------------------------------- cases

/** pagewalk walk(): the async chunk stream (readAsync on the thread pool). */
async function walkAsync(pids) {
  let entries = 0;
  for (const pid of pids) for await (const c of pw.walk(pid)) entries += c.pages;
  return { entries };
}

function walkSync(pids) {
  let entries = 0;
  for (const pid of pids) for (const c of pw.walkSync(pid)) entries += c.pages;
  return { entries };
}

/** The exact accounting walk: processMemory per pid, one after the other. */
async function processMemory(pids, options) {
  let pss = 0;
  let timings;
  for (const pid of pids) {
    const r = await pw.processMemory(pid, options);
    pss += r.pss;
    timings = addTimings(timings, r.timings);
  }
  return { pssBytes: pss, timings };
}

/** Sums two breakdowns field by field; whatever fields the library reports. */
function addTimings(sum, t) {
  if (!t || typeof t !== 'object') return sum;
  const out = { ...(sum ?? {}) };
  for (const [k, v] of Object.entries(t)) if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
  return out;
}

async function snapshot(pids, options) {
  const s = await pw.snapshot({ ...(pids.length ? { pids } : {}), ...options });
  return {
    processes: s.processes.length,
    gone: s.gone.length,
    distinctPfns: s.distinctPfns,
    scopePss: s.scope.totals.pss,
    timings: addTimings(undefined, s.timings),
  };
}

// A plain JavaScript pagemap walker: fs.readSync, 512 KiB per read.
const jsBuffer = Buffer.allocUnsafe(64 * 1024 * 8);
function jsReadSync(pids) {
  let entries = 0;
  for (const pid of pids) {
    let maps;
    let fd;
    try {
      maps = fs.readFileSync(`/proc/${pid}/maps`, 'latin1');
      fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    } catch {
      continue;
    }
    try {
      for (const line of maps.split('\n')) {
        const dash = line.indexOf('-');
        if (dash < 0) continue;
        const sp = line.indexOf(' ', dash);
        const startHex = line.slice(0, dash);
        if (startHex.length > 12) continue; // kernel half: [vsyscall]
        let page = parseInt(startHex, 16) / 4096;
        const last = parseInt(line.slice(dash + 1, sp), 16) / 4096;
        while (page < last) {
          const n = Math.min(last - page, 64 * 1024);
          const got = fs.readSync(fd, jsBuffer, 0, n * 8, page * 8);
          if (got <= 0) break;
          entries += got / 8;
          page += got / 8;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return { entries };
}

/** The kernel computing PSS itself. pids empty: every process. */
function smapsRollup(pids) {
  const list = pids.length ? pids : pw.listPids();
  let read = 0;
  for (const pid of list) {
    try {
      fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
      read++;
    } catch {
      // exited, or a kernel thread's empty file
    }
  }
  return { processes: read };
}

const cases = { walkAsync, walkSync, processMemory, snapshot, jsReadSync, smapsRollup };

// Event-loop lag while processMemory runs: the longest stall a 1 ms timer
// and the histogram saw, measured on measured runs only.
async function lagRun(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    worst = Math.max(worst, t - last - 1);
    last = t;
  }, 1);
  h.enable();
  last = performance.now();
  const out = await fn();
  h.disable();
  clearInterval(timer);
  return { out, lagMs: Math.max(worst, h.max / 1e6 - 1), histMaxMs: h.max / 1e6 };
}

async function main() {
  const fn = cases[spec.kind];
  if (!fn) throw new Error(`unknown case ${spec.kind}`);
  const call = () => fn(spec.pids, spec.options ?? {});
  // The peak RSS one call adds is VmHWM after the first call (warm-up or
  // not) minus VmHWM before it; later calls add garbage the collector has
  // not reclaimed yet, reported apart (hwmAfterKb).
  const hwmBeforeKb = vmHwmKb();
  let hwmAfterFirstKb;
  const first = () => {
    if (hwmAfterFirstKb === undefined) hwmAfterFirstKb = vmHwmKb();
  };
  for (let i = 0; i < spec.warmup; i++) {
    await call();
    first();
  }
  const timesMs = [];
  const cpuMs = [];
  const lags = [];
  const timings = [];
  let extra;
  // The stall scenario's latency window covers the measured runs only.
  if (spec.stallPid) process.kill(spec.stallPid, 'SIGUSR1');
  for (let i = 0; i < spec.runs; i++) {
    const cpu0 = process.cpuUsage();
    if (spec.lag) {
      const t0 = performance.now();
      const r = await lagRun(call);
      timesMs.push(performance.now() - t0);
      lags.push(r.lagMs);
      extra = r.out;
    } else {
      const t0 = performance.now();
      extra = await call();
      timesMs.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    cpuMs.push((cpu.user + cpu.system) / 1e3);
    first();
    if (extra?.timings) timings.push(extra.timings);
  }
  if (spec.stallPid) process.kill(spec.stallPid, 'SIGUSR2');
  if (extra) delete extra.timings;
  const out = { timesMs, cpuMs, hwmBeforeKb, hwmAfterFirstKb, hwmAfterKb: vmHwmKb(), extra };
  if (timings.length) out.timings = timings;
  if (spec.lag) out.lagMs = lags;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
