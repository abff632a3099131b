#!/usr/bin/env node

// pagewalk benchmarks: `npm run bench [-- flags]`.
//
//   --scale full|tiny   scenario sizes (default full; tiny for CI smoke runs)
//   --runs N            measured runs per case (default 7; tiny: 3)
//   --warmup N          warm-up runs per case (default 1)
//   --json              print the results as JSON on stdout (table on stderr)
//   --sweep             also run the scaling sweep and draw docs/bench-*.svg
//   --sweep-only        only the sweep
//   --only a,b          only these scenarios (dense,sparse,maps,shared,system,
//                       backends,stall)
//   --states a,b        running, stopped or both (default running,stopped):
//                       each scenario is measured once per state
//   --backends N        backends scenario: N processes (default 64; tiny 3)
//   --backends-mib M    backends scenario: M MiB shared (default 4096; tiny 32)
//   --stall-mib M       stall scenario: M MiB resident (default 4096; tiny 64)
//   --plots DIR         where --sweep draws its SVGs (default docs/)
//   --save FILE         also write the JSON results to FILE
//   --markdown FILE     also write the tables as Markdown to FILE
//   --render FILE       print (and --markdown) the tables of a --save'd run
//   --system all|scenarios  system scenario over every process (default) or
//                       only the scenario processes (default with --scale tiny)
//
// Scenario processes (benchmarks/scenario.c) are started here and killed at
// the end, on error and on SIGINT/SIGTERM. They run as servers do (waking
// every 5 ms, mapping and unmapping a little now and then); every scenario
// is measured twice over the same processes: running (the state the targets
// are judged on) and stopped (SIGSTOP). The stall scenario only runs.
// Every case runs in its own child process (benchmarks/case.js, or the C
// baseline benchmarks/pread_walk.c, or whole commands under
// benchmarks/exec_rusage.c) after a warm-up; the median and the min-max of
// the runs are reported, with the library's own `timings` breakdown where
// the call returns one. Times are of this machine in this run: compare the
// ratios, not the absolute figures.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const TMP = path.join(__dirname, '.bench-tmp');
const DIST = path.join(ROOT, 'dist');
// The command as installed: the package's bin, wherever the build puts it.
const CLI = path.join(ROOT, require(path.join(ROOT, 'package.json')).bin.pagewalk);

// ---------------------------------------------------------------- flags

function parseArgs(argv) {
  const o = {
    scale: 'full',
    runs: undefined,
    warmup: 1,
    json: false,
    sweep: false,
    sweepOnly: false,
    only: null,
    save: null,
    markdown: null,
    plots: path.join(ROOT, 'docs'),
    states: ['running', 'stopped'],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--scale') o.scale = val();
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--json') o.json = true;
    else if (a === '--sweep') o.sweep = true;
    else if (a === '--sweep-only') o.sweep = o.sweepOnly = true;
    else if (a === '--only') o.only = val().split(',');
    else if (a === '--states') o.states = val().split(',');
    else if (a === '--save') o.save = val();
    else if (a === '--markdown') o.markdown = val();
    else if (a === '--system') o.system = val();
    else if (a === '--render') o.render = val();
    else if (a === '--backends') o.backendsProcs = Number(val());
    else if (a === '--backends-mib') o.backendsMiB = Number(val());
    else if (a === '--stall-mib') o.stallMiB = Number(val());
    else if (a === '--plots') o.plots = path.resolve(val());
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        `${fs
          .readFileSync(__filename, 'utf8')
          .split('\n')
          .slice(2, 23)
          .join('\n')
          .replace(/^\/\/ ?/gm, '')}\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (!SCALES[o.scale]) throw new Error(`--scale must be one of ${Object.keys(SCALES).join(', ')}`);
  if (o.system === undefined) o.system = o.scale === 'tiny' ? 'scenarios' : 'all';
  if (o.system !== 'all' && o.system !== 'scenarios') throw new Error('--system must be all or scenarios');
  if (o.runs === undefined) o.runs = o.scale === 'tiny' ? 3 : 7;
  if (!o.states.length || o.states.some((x) => x !== 'running' && x !== 'stopped'))
    throw new Error('--states must list running, stopped or both');
  if (!(o.runs >= 1) || !(o.warmup >= 0)) throw new Error('--runs must be >= 1 and --warmup >= 0');
  for (const k of ['backendsProcs', 'backendsMiB', 'stallMiB'])
    if (o[k] !== undefined && !(Number.isInteger(o[k]) && o[k] >= 1))
      throw new Error(`--${k} must be a positive integer`);
  return o;
}

// Sizes in MiB (sparse reservation in GiB).
const SCALES = {
  full: {
    denseMiB: 8192,
    sparseReserveGiB: 1024,
    sparseResidentMiB: 256,
    maps: 60000,
    sharedProcs: 16,
    sharedMiB: 2048,
    privateMiB: 64,
    sweepDenseMiB: [1024, 2048, 4096, 8192],
    // PostgreSQL's shape: backends forked from one postmaster, every one
    // having read the whole shared buffer pool.
    backendsProcs: 64,
    backendsMiB: 4096,
    backendsPrivateMiB: 4,
    stallMiB: 4096,
    sweepProcs: [1, 2, 4, 8, 16, 32, 64, 128],
    sweepSharedMiB: 2048,
    sweepPrivateMiB: 16,
    // processMemory of each process grows with the count times the shared
    // size: beyond this count the sweep leaves it out (snapshot is the call
    // for many processes).
    sweepProcessMemoryMaxProcs: 16,
    sweepRuns: 3,
  },
  tiny: {
    denseMiB: 64,
    sparseReserveGiB: 16,
    sparseResidentMiB: 16,
    maps: 2000,
    sharedProcs: 3,
    sharedMiB: 32,
    privateMiB: 4,
    sweepDenseMiB: [16, 32, 64],
    backendsProcs: 3,
    backendsMiB: 32,
    backendsPrivateMiB: 2,
    stallMiB: 64,
    sweepProcs: [1, 2, 4],
    sweepSharedMiB: 32,
    sweepPrivateMiB: 4,
    sweepProcessMemoryMaxProcs: 2,
    sweepRuns: 1,
  },
};

const opts = parseArgs(process.argv.slice(2));
const S = { ...SCALES[opts.scale] };
for (const k of ['backendsProcs', 'backendsMiB', 'stallMiB']) if (opts[k] !== undefined) S[k] = opts[k];
const log = (msg) => process.stderr.write(`${msg}\n`);
const out = (msg) => (opts.json ? process.stderr : process.stdout).write(`${msg}\n`);

// ---------------------------------------------------------------- processes

const scenarios = new Set(); // ChildProcess, each the leader of its own process group

function killAll() {
  for (const child of scenarios) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  scenarios.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    log(`bench: ${sig}, scenario processes killed`);
    process.exit(130);
  });
}

function compile(name) {
  fs.mkdirSync(TMP, { recursive: true });
  const exe = path.join(TMP, name);
  execFileSync('cc', ['-O2', '-Wall', '-o', exe, path.join(__dirname, `${name}.c`)], { stdio: 'inherit' });
  return exe;
}

/**
 * Starts a scenario; resolves to its pids once every page is in place. Its
 * processes run (see setState).
 */
function startScenario(exe, args, label) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    scenarios.add(child);
    const sc = { child, pids: null, label, text: '' };
    const began = Date.now();
    child.on('error', reject);
    child.on('exit', (code, sig) => reject(new Error(`scenario ${label} exited early (${code ?? sig})`)));
    child.stdout.on('data', (d) => {
      sc.text += d;
      if (sc.pids) return;
      const m = /READY([ \d]+)\n/.exec(sc.text);
      if (!m) return;
      sc.pids = m[1].trim().split(/\s+/).map(Number);
      log(`  ${label}: ${sc.pids.length} process(es) ready in ${((Date.now() - began) / 1000).toFixed(1)} s`);
      resolve(sc);
    });
  });
}

/**
 * The stall scenario's worst mmap+munmap latency over one window. `fn`
 * runs the reader; by default the window is the whole of `fn`, process
 * start-up included; with `signalled` the reader's own process opens the
 * window after its warm-up and closes it after its last measured run
 * (benchmarks/case.js, `stallPid`), so that only the timed calls count.
 */
async function stallWindow(sc, fn, { signalled = false } = {}) {
  const pid = sc.pids[0];
  const from = sc.text.length;
  if (!signalled) {
    process.kill(pid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 20));
  }
  const r = await fn();
  if (!signalled) process.kill(pid, 'SIGUSR2');
  const began = Date.now();
  for (;;) {
    const m = /STALL (\d+) (\d+) (\d+) (\d+)\n/.exec(sc.text.slice(from));
    if (m) {
      const stall = {
        worstMs: Number(m[1]) / 1e6,
        calls: Number(m[2]),
        over1ms: Number(m[3]),
        over100us: Number(m[4]),
      };
      log(`      stall: worst ${stall.worstMs.toFixed(3)} ms over ${stall.calls} calls, ${stall.over1ms} over 1 ms`);
      return { ...r, stall };
    }
    if (Date.now() - began > 5000) throw new Error('stall scenario did not report');
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Stops (SIGSTOP) or resumes (SIGCONT) every process of the scenarios, and waits until they are so. */
async function setState(scs, state) {
  const pids = scs.flatMap((sc) => sc.pids);
  for (const pid of pids) process.kill(pid, state === 'stopped' ? 'SIGSTOP' : 'SIGCONT');
  const stopped = (pid) => {
    try {
      return /\) [tT] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'));
    } catch {
      return state === 'stopped';
    }
  };
  const began = Date.now();
  while (pids.some((pid) => stopped(pid) !== (state === 'stopped'))) {
    if (Date.now() - began > 5000) throw new Error(`scenario processes not ${state} after 5 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  log(`  ${pids.length} scenario process(es) ${state}`);
}

function stopScenario(sc) {
  try {
    process.kill(-sc.child.pid, 'SIGKILL');
  } catch {
    // gone
  }
  scenarios.delete(sc.child);
}

function runChild(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      if (code !== 0)
        return reject(
          new Error(`${path.basename(cmd)} ${args[0]?.slice(0, 80)} failed (${code ?? sig}): ${stderr.slice(0, 2000)}`),
        );
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {
        reject(new Error(`bad output from ${cmd}: ${stdout.slice(0, 500)} ${stderr.slice(0, 500)}`));
      }
    });
  });
}

// ---------------------------------------------------------------- cases

const partialResults = [];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

let preadExe;
let execExe;

/** Median of each field over the runs' breakdowns; fields as the library reports them. */
function medianTimings(runs) {
  if (!runs?.length) return undefined;
  const keys = [...new Set(runs.flatMap((t) => Object.keys(t)))];
  const out = {};
  for (const k of keys) {
    const xs = runs.map((t) => t[k]).filter((x) => typeof x === 'number');
    if (xs.length) out[k] = median(xs);
  }
  return out;
}

/** Runs one case in its own process and summarises its runs. */
async function measure(name, kind, pids, options = {}, extra = {}) {
  let r;
  const runs = extra.runs ?? opts.runs;
  const warmup = extra.warmup ?? opts.warmup;
  if (kind === 'pread') {
    r = await runChild(preadExe, [String(runs), String(warmup), ...pids.map(String)]);
  } else if (kind === 'exec') {
    r = await runChild(execExe, [String(runs), String(warmup), ...options.argv]);
  } else {
    const spec = { kind, pids, runs, warmup, options, lag: extra.lag ?? false, stallPid: extra.stallPid };
    r = await runChild(process.execPath, [path.join(__dirname, 'case.js'), JSON.stringify(spec)]);
  }
  const res = {
    name,
    kind,
    medianMs: median(r.timesMs),
    minMs: Math.min(...r.timesMs),
    maxMs: Math.max(...r.timesMs),
    timesMs: r.timesMs,
    // CPU time of the measuring process per run (user + system, every
    // thread; of the whole command for commands): median over the runs.
    cpuMs: r.cpuMs?.length ? median(r.cpuMs) : null,
    // Peak RSS one call added to the measuring process (VmHWM after its
    // first call minus before); the C baseline reports all its runs.
    rssAddedMiB: r.hwmBeforeKb >= 0 ? ((r.hwmAfterFirstKb ?? r.hwmAfterKb) - r.hwmBeforeKb) / 1024 : null,
    rssAddedAllRunsMiB: r.hwmBeforeKb >= 0 ? (r.hwmAfterKb - r.hwmBeforeKb) / 1024 : null,
  };
  // Whole commands: the peak RSS of the whole process (wait4's ru_maxrss).
  if (r.maxRssKb) res.peakRssMiB = Math.max(...r.maxRssKb) / 1024;
  const timings = medianTimings(r.timings);
  if (timings) res.timings = timings;
  if (r.lagMs) res.maxLagMs = Math.max(...r.lagMs);
  if (r.entries !== undefined) {
    res.entries = r.entries;
    res.addressBytes = r.addressBytes;
  }
  if (r.extra) res.detail = r.extra;
  log(
    `    ${name.padEnd(34)} ${fmtMs(res.medianMs).padStart(10)}  [${fmtMs(res.minMs)}–${fmtMs(res.maxMs)}]${res.cpuMs == null ? '' : `  CPU ${fmtMs(res.cpuMs)}`}`,
  );
  return res;
}

function fmtMs(ms) {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Fills throughput and ratios from the scenario's baselines. */
function finish(scenario) {
  partialResults.push(scenario);
  savePartial(partialResults);
  const by = (kind) => scenario.cases.find((c) => c.kind === kind && !c.name.includes('concurrency'));
  const c = by('pread');
  const base = {
    pread: c,
    jsReadSync: by('jsReadSync'),
    smapsRollup: by('smapsRollup'),
    smem: scenario.cases.find((x) => x.name === 'smem'),
  };
  for (const k of scenario.cases) {
    if (c && k.kind !== 'idle') {
      k.entriesPerSec = c.entries / (k.medianMs / 1e3);
      k.gbPerSec = c.addressBytes / 1e9 / (k.medianMs / 1e3);
    }
    k.ratios = {};
    if (k.kind !== 'idle')
      for (const [bn, b] of Object.entries(base)) if (b && b !== k) k.ratios[bn] = k.medianMs / b.medianMs;
    if (k.cpuMs != null && base.smapsRollup?.cpuMs && k !== base.smapsRollup)
      k.cpuRatioSmapsRollup = k.cpuMs / base.smapsRollup.cpuMs;
  }
  if (c) {
    scenario.entries = c.entries;
    scenario.addressBytes = c.addressBytes;
  }
  return scenario;
}

async function standardCases(pids, { lag = false } = {}) {
  // The lag monitor (a 1 ms timer) competes for the CPU: it gets a case of
  // its own so that it never inflates the timed one.
  const lagged = lag ? [await measure('processMemory + lag monitor', 'processMemory', pids, {}, { lag: true })] : [];
  return [
    await measure('pagewalk processMemory', 'processMemory', pids),
    ...lagged,
    await measure('pagewalk walk() (readAsync)', 'walkAsync', pids),
    await measure('pagewalk walkSync()', 'walkSync', pids),
    await measure('C pread loop', 'pread', pids),
    await measure('JS fs.readSync walker', 'jsReadSync', pids),
    await measure('smaps_rollup read', 'smapsRollup', pids),
  ];
}

// ---------------------------------------------------------------- main run

async function mainRun(exe) {
  const want = (n) => !opts.only || opts.only.includes(n);
  const results = [];
  log(`starting scenarios (scale ${opts.scale})`);
  const started = {};
  if (want('dense') || want('system'))
    started.dense = await startScenario(exe, ['dense', String(S.denseMiB)], `dense ${S.denseMiB} MiB`);
  if (want('sparse') || want('system')) {
    started.sparse = await startScenario(
      exe,
      ['sparse', String(S.sparseReserveGiB), String(S.sparseResidentMiB)],
      `sparse ${S.sparseReserveGiB} GiB / ${S.sparseResidentMiB} MiB`,
    );
    started.denseRef = await startScenario(
      exe,
      ['dense', String(S.sparseResidentMiB)],
      `dense ${S.sparseResidentMiB} MiB (sparse reference)`,
    );
  }
  if (want('maps') || want('system'))
    started.maps = await startScenario(exe, ['maps', String(S.maps)], `${S.maps} mappings`);
  if (want('shared') || want('system')) {
    started.shared = await startScenario(
      exe,
      ['shared', String(S.sharedProcs), String(S.sharedMiB), String(S.privateMiB)],
      `${S.sharedProcs} x shared ${S.sharedMiB} MiB + ${S.privateMiB} MiB private`,
    );
  }

  for (const state of opts.states) {
    await setState(Object.values(started), state);
    log(`-- ${state} targets`);
    if (want('dense')) {
      log(`dense: ${S.denseMiB} MiB, every page touched`);
      results.push(
        finish({
          id: 'dense',
          state,
          title: `dense ${gib(S.denseMiB)} anonymous`,
          pids: started.dense.pids,
          cases: await standardCases(started.dense.pids, { lag: true }),
        }),
      );
    }
    if (want('sparse')) {
      log(`sparse: ${S.sparseReserveGiB} GiB reserved, ${S.sparseResidentMiB} MiB resident`);
      const cases = await standardCases(started.sparse.pids);
      cases.push(
        await measure(`processMemory, dense ${S.sparseResidentMiB} MiB ref`, 'processMemory', started.denseRef.pids),
      );
      cases.push(await measure(`C pread, dense ${S.sparseResidentMiB} MiB ref`, 'pread', started.denseRef.pids));
      results.push(
        finish({
          id: 'sparse',
          state,
          title: `sparse ${S.sparseReserveGiB} GiB reserved / ${S.sparseResidentMiB} MiB resident`,
          pids: started.sparse.pids,
          cases,
        }),
      );
    }
    if (want('maps')) {
      log(`maps: ${S.maps} mappings`);
      results.push(
        finish({
          id: 'maps',
          state,
          title: `${S.maps.toLocaleString('en')} mappings`,
          pids: started.maps.pids,
          cases: await standardCases(started.maps.pids),
        }),
      );
    }
    if (want('shared')) {
      log(`shared: ${S.sharedProcs} processes`);
      const pids = started.shared.pids;
      const cases = await standardCases(pids);
      cases.unshift(await measure('pagewalk snapshot({pids})', 'snapshot', [...pids]));
      cases.splice(1, 0, await measure('snapshot({pids}) concurrency 1', 'snapshot', [...pids], { concurrency: 1 }));
      results.push(
        finish({
          id: 'shared',
          state,
          title: `${S.sharedProcs} processes sharing ${gib(S.sharedMiB)} + ${S.privateMiB} MiB private each`,
          pids,
          cases,
        }),
      );
    }
    if (want('system')) {
      // Tiny runs (CI) keep to the scenario processes: a CI machine's other
      // processes (a sanitizer's 20 TiB shadows) would make the smoke run slow.
      const scoped = opts.system === 'scenarios';
      const scenarioPids = Object.values(started).flatMap((sc) => sc.pids);
      // `[ ]`: the pattern must not match the smem command's own argument.
      const filter = scoped ? ['-P', 'bench-tmp/scenario[ ]'] : [];
      log(
        scoped ? `system: the ${scenarioPids.length} scenario processes (--system scenarios)` : 'system: every process',
      );
      const all = scoped
        ? scenarioPids
        : fs
            .readdirSync('/proc')
            .filter((n) => /^\d+$/.test(n))
            .map(Number);
      // The C loop reads every entry of every address space: a sanitizer's
      // 20 TiB shadow reservation alone would take minutes. Such processes are
      // left out of that one baseline (and counted).
      const vsz = (pid) => {
        try {
          return Number(/^VmSize:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0) * 1024;
        } catch {
          return 0;
        }
      };
      const huge = all.filter((p) => vsz(p) > 2 * 2 ** 40);
      const modest = all.filter((p) => !huge.includes(p));
      if (huge.length) log(`    (${huge.length} processes over 2 TiB of address space left out of the C pread loop)`);
      const cases = [
        await measure('pagewalk snapshot()', 'snapshot', scoped ? scenarioPids : []),
        await measure('snapshot() concurrency 1', 'snapshot', scoped ? scenarioPids : [], { concurrency: 1 }),
        // Every byte of every address space, reservations included: seconds
        // on a busy machine, so one run.
        await measure(
          huge.length ? `C pread loop (${modest.length} pids <= 2 TiB VA)` : 'C pread loop',
          'pread',
          modest,
          {},
          { runs: 1, warmup: 0 },
        ),
        await measure('smaps_rollup read', 'smapsRollup', scoped ? scenarioPids : []),
        await measure('smem', 'exec', [], { argv: ['smem', ...filter] }),
      ];
      if (fs.existsSync(CLI))
        cases.push(await measure(PW_SMEM, 'exec', [], { argv: [process.execPath, CLI, 'smem', ...filter] }));
      else log(`    pagewalk smem: pending (${path.relative(ROOT, CLI)} does not exist yet)`);
      const s = finish({
        id: 'system',
        state,
        title: scoped ? `snapshot of the ${all.length} scenario processes` : `system snapshot (${all.length} pids)`,
        pids: [],
        cases,
      });
      s.cliPending = !fs.existsSync(CLI);
      s.hugeAddressSpaces = huge.length;
      results.push(s);
    }
  }
  for (const sc of Object.values(started)) stopScenario(sc);
  // The two below run alone: with the scenarios above they would not fit
  // in 24 GiB, and the stall scenario's latency is about this process only.
  if (want('backends')) results.push(...(await backendsScenario(exe)));
  if (want('stall') && opts.states.includes('running')) results.push(await stallScenario(exe));
  return results;
}

const PW_SMEM = 'pagewalk smem (whole command)';
const NO_PAUSES = 'processMemory, lockPauses: false';

/**
 * PostgreSQL's shape: backends forked from one parent, all having read one
 * MAP_SHARED region (the shared buffers), a little private memory each.
 */
async function backendsScenario(exe) {
  const { backendsProcs: n, backendsMiB: mib, backendsPrivateMiB: priv } = S;
  const sc = await startScenario(
    exe,
    ['backends', String(n), String(mib), String(priv)],
    `${n} backends sharing ${gib(mib)} + ${priv} MiB private`,
  );
  try {
    const results = [];
    for (const state of opts.states) {
      await setState([sc], state);
      log(`backends (${state}): ${n} processes that have read ${gib(mib)} of MAP_SHARED memory`);
      const pids = sc.pids;
      // Matches the backends' command line but not smem's own arguments.
      const filter = ['-P', 'scenario[ ]backends'];
      const cases = [
        await measure('pagewalk snapshot({pids})', 'snapshot', pids),
        await measure('pagewalk processMemory (one backend)', 'processMemory', [pids[1] ?? pids[0]]),
        await measure('C pread loop', 'pread', pids),
        await measure('smaps_rollup read', 'smapsRollup', pids),
        await measure('smem', 'exec', [], { argv: ['smem', ...filter] }),
      ];
      if (fs.existsSync(CLI))
        cases.push(await measure(PW_SMEM, 'exec', [], { argv: [process.execPath, CLI, 'smem', ...filter] }));
      results.push(
        finish({
          id: 'backends',
          state,
          title: `${n} backends sharing ${gib(mib)} + ${priv} MiB private each`,
          pids,
          cases,
        }),
      );
    }
    return results;
  } finally {
    stopScenario(sc);
  }
}

/**
 * A large process timing its own mmap+touch+munmap while it is measured:
 * the longest it waited (for the mmap lock, or for a CPU) per reader.
 */
async function stallScenario(exe) {
  const sc = await startScenario(exe, ['stall', String(S.stallMiB)], `stall ${gib(S.stallMiB)}`);
  try {
    log(`stall: ${gib(S.stallMiB)} process timing its own mmap+munmap (running, not stopped)`);
    const pid = sc.pids;
    const cases = [];
    // Idle: as long as the processMemory case takes, roughly.
    const idle = await stallWindow(sc, async () => {
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, opts.scale === 'tiny' ? 200 : 3000));
      return { elapsed: Date.now() - t0 };
    });
    const idleCase = {
      name: 'idle (nothing reads it)',
      kind: 'idle',
      medianMs: idle.elapsed,
      minMs: idle.elapsed,
      maxMs: idle.elapsed,
      timesMs: [idle.elapsed],
      rssAddedMiB: null,
      stall: idle.stall,
    };
    log(`    ${idleCase.name.padEnd(34)} ${fmtMs(idle.elapsed).padStart(10)}`);
    cases.push(idleCase);
    // Control: a process that only burns a CPU for as long, taking no lock
    // of the target's. On 2 busy cores the target also waits for a CPU, and
    // this is how much of a reader's "stall" that alone explains.
    const burnMs = opts.scale === 'tiny' ? 200 : 3000;
    const burn = await stallWindow(sc, async () => {
      const t0 = Date.now();
      await new Promise((resolve, reject) => {
        const c = spawn(process.execPath, ['-e', `const e = Date.now() + ${burnMs}; while (Date.now() < e);`], {
          stdio: 'ignore',
        });
        c.on('exit', resolve);
        c.on('error', reject);
      });
      return { elapsed: Date.now() - t0 };
    });
    cases.push({
      ...idleCase,
      name: 'CPU burner (takes no lock)',
      kind: 'burn',
      medianMs: burn.elapsed,
      minMs: burn.elapsed,
      maxMs: burn.elapsed,
      timesMs: [burn.elapsed],
      stall: burn.stall,
    });
    for (const [name, kind, options] of [
      ['pagewalk processMemory', 'processMemory', {}],
      // What the pacing costs: the same walk that never pauses, in this run.
      [NO_PAUSES, 'processMemory', { lockPauses: false }],
      ['pagewalk snapshot({pids})', 'snapshot', {}],
      ['C pread loop', 'pread', {}],
      ['smaps_rollup read', 'smapsRollup', {}],
    ]) {
      // The C loop is a plain program: its window includes its start-up
      // and warm-up (a few ms of a sleeping target).
      const signalled = kind !== 'pread';
      cases.push(await stallWindow(sc, () => measure(name, kind, pid, options, { stallPid: pid[0] }), { signalled }));
    }
    return finish({
      id: 'stall',
      state: 'running',
      title: `${gib(S.stallMiB)} process timing its own mmap+munmap`,
      pids: pid,
      cases,
    });
  } finally {
    stopScenario(sc);
  }
}

/** Writes what is measured so far, so that an interrupted run keeps it. */
function savePartial(results) {
  if (opts.save)
    fs.writeFileSync(
      `${opts.save}.partial`,
      `${JSON.stringify({ machine: machine(), scenarios: results }, null, 2)}\n`,
    );
}

const gib = (mib) => (mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`);

// ---------------------------------------------------------------- targets

/**
 * The targets of issue 17 (time and CPU ratios against reading every
 * measured process's smaps_rollup serially, in this same run and the same
 * state; peak RSS), then the older ones. Each target is judged on the
 * running targets unless it says "stopped"; a ratio target measured in the
 * other state too gets a second row for it, marked "(other state)", whose
 * "met" is informative. A target whose cases did not run is left out; one
 * whose command is missing is "pending".
 */
function targets(results) {
  const sc = (id, state) => results.find((r) => r.id === id && (!state || r.state === state));
  const cs = (id, name, state) => sc(id, state)?.cases.find((c) => c.name === name);
  const t = [];
  const add = (name, goal, value, ok, figures, note) =>
    t.push({ name, goal, value, met: value == null ? null : ok, figures, note });
  const vs = (a, b) => `${fmtMs(a.medianMs)} / ${fmtMs(b.medianMs)}`;
  const other = (state) => (state === 'running' ? 'stopped' : 'running');
  /** time(a) / time(b) in scenario id, at most `limit`: in `state`, then in the other state. */
  const ratio = (label, id, a, b, limit, state = 'running') => {
    for (const st of [state, other(state)]) {
      if (!sc(id, st)) continue;
      const name = `${label}, ${st}${st === state ? '' : ' (other state)'}`;
      const x = cs(id, a, st);
      const y = cs(id, b, st);
      if (!x || !y) {
        add(name, `<= ${limit}`, null, null, '', `pending: ${x ? b : a} not measured`);
        continue;
      }
      const v = x.medianMs / y.medianMs;
      add(name, `<= ${limit}`, v, v <= limit, vs(x, y));
    }
  };
  const cpuRatio = (label, id, a, b, limit) => {
    for (const st of ['running', 'stopped']) {
      const x = cs(id, a, st);
      const y = cs(id, b, st);
      if (!x?.cpuMs || !y?.cpuMs) continue;
      const v = x.cpuMs / y.cpuMs;
      add(
        `${label}, ${st}${st === 'running' ? '' : ' (other state)'}`,
        `<= ${limit}`,
        v,
        v <= limit,
        `CPU ${fmtMs(x.cpuMs)} / ${fmtMs(y.cpuMs)}`,
      );
    }
  };
  const rollup = 'smaps_rollup read';
  ratio('snapshot({pids}) of shared / smaps_rollup', 'shared', 'pagewalk snapshot({pids})', rollup, 0.5);
  ratio('snapshot({pids}) of backends / smaps_rollup', 'backends', 'pagewalk snapshot({pids})', rollup, 0.5);
  ratio('snapshot() of the whole machine / smaps_rollup', 'system', 'pagewalk snapshot()', rollup, 0.6);
  cpuRatio(
    'CPU of snapshot() of the whole machine / CPU of smaps_rollup',
    'system',
    'pagewalk snapshot()',
    rollup,
    0.6,
  );
  const stall = sc('stall');
  if (stall) {
    const pm = cs('stall', 'pagewalk processMemory');
    const ro = cs('stall', rollup);
    const v = pm.medianMs / ro.medianMs;
    add(
      `processMemory of the running ${gib(S.stallMiB)} stall process / smaps_rollup`,
      '<= 1.0',
      v,
      v <= 1,
      vs(pm, ro),
    );
    const by = (n) => stall.cases.find((c) => c.name === n)?.stall;
    const note = `smaps_rollup ${fmtNum(by(rollup)?.worstMs, 2)} ms, idle ${fmtNum(by('idle (nothing reads it)')?.worstMs, 2)} ms, CPU burner ${fmtNum(by('CPU burner (takes no lock)')?.worstMs, 2)} ms, lockPauses: false ${fmtNum(by(NO_PAUSES)?.worstMs, 2)} ms`;
    const w = pm.stall.worstMs;
    add('worst stall of the stall process under processMemory (ms), same run', '< 1', w, w < 1, note);
    // What pacing costs: the paced walk against the same walk never pausing.
    const free = cs('stall', NO_PAUSES);
    if (free) {
      const cost = (pm.medianMs - free.medianMs) / pm.medianMs;
      add(
        'pacing cost, stall: (processMemory - same with lockPauses: false) / processMemory',
        '<= 0.1',
        cost,
        cost <= 0.1,
        `${vs(pm, free)}; paused ${fmtNum(pm.timings?.paused)} ms`,
      );
    }
  }
  ratio('processMemory of dense / smaps_rollup', 'dense', 'pagewalk processMemory', rollup, 0.7, 'stopped');
  ratio('processMemory of 60,000 mappings / smaps_rollup', 'maps', 'pagewalk processMemory', rollup, 1.0);
  for (const st of ['running', 'stopped']) {
    const c = cs('dense', 'C pread loop', st);
    const k = cs('dense', 'pagewalk walk() (readAsync)', st);
    if (!c || !k) continue;
    const v = c.medianMs / k.medianMs;
    add(
      `walk throughput, walk() of dense / C pread loop, ${st}${st === 'running' ? '' : ' (other state)'}`,
      '>= 0.97x',
      v,
      v >= 0.97,
      vs(c, k),
    );
  }
  const pwSmem = (id) => {
    for (const st of ['running', 'stopped']) {
      if (!sc(id, st)) continue;
      const a = cs(id, PW_SMEM, st);
      const b = cs(id, 'smem', st);
      const label = `pagewalk smem / Debian smem, end to end, ${id}, ${st}${st === 'running' ? '' : ' (other state)'}`;
      if (!a) {
        add(label, '<= 0.4', null, null, '', `pending: ${path.relative(ROOT, CLI)} not built`);
        continue;
      }
      const v = a.medianMs / b.medianMs;
      add(label, '<= 0.4', v, v <= 0.4, vs(a, b));
    }
  };
  pwSmem('backends');
  pwSmem('system');
  const bc = cs('backends', PW_SMEM, 'running') ?? cs('backends', PW_SMEM);
  if (bc) {
    const smemPeak = cs('backends', 'smem')?.peakRssMiB;
    add(
      'peak RSS of the whole pagewalk smem process, backends (MiB)',
      '<= 64',
      bc.peakRssMiB,
      bc.peakRssMiB <= 64,
      `Debian smem ${fmtNum(smemPeak)} MiB`,
    );
  }
  // The memory targets of the last round, kept so that a regression shows.
  for (const r of results) {
    for (const c of r.cases) {
      if (c.kind !== 'processMemory' || c.name.includes('lag monitor') || c.rssAddedMiB == null) continue;
      if (c.name === NO_PAUSES) continue;
      const which =
        c.name === 'pagewalk processMemory' ? '' : ` (${c.name.replace(/^pagewalk processMemory \((.*)\)$/, '$1')})`;
      add(
        `peak RSS added by processMemory, ${r.id}${which}, ${r.state} (MiB)`,
        '<= 64',
        c.rssAddedMiB,
        c.rssAddedMiB <= 64,
      );
    }
  }
  for (const st of ['running', 'stopped']) {
    const bs = cs('backends', 'pagewalk snapshot({pids})', st);
    if (bs)
      add(`peak RSS added by snapshot() of backends, ${st} (MiB)`, '<= 128', bs.rssAddedMiB, bs.rssAddedMiB <= 128);
  }
  // Earlier targets.
  const dense = sc('dense', 'stopped') ?? sc('dense');
  if (dense) {
    const c = cs('dense', 'C pread loop', dense.state);
    const k = cs('dense', 'pagewalk processMemory', dense.state);
    const v = c.medianMs / k.medianMs;
    add(`walk throughput, processMemory of dense / C pread loop, ${dense.state}`, '>= 0.97x', v, v >= 0.97, vs(c, k));
    const lm = cs('dense', 'processMemory + lag monitor', dense.state);
    add(`event-loop lag, processMemory of dense, ${dense.state} (ms)`, '<= 20', lm.maxLagMs, lm.maxLagMs <= 20);
  }
  const sparse = sc('sparse', 'stopped') ?? sc('sparse');
  if (sparse) {
    const a = cs('sparse', 'pagewalk processMemory', sparse.state);
    const b = sparse.cases.find((c) => c.name.startsWith('processMemory, dense'));
    const v = a.medianMs / b.medianMs;
    add(`sparse / dense of its resident size (time ratio), ${sparse.state}`, '<= 1.5', v, v <= 1.5, vs(a, b));
  }
  const sys = sc('system', 'running') ?? sc('system');
  const one = sys?.cases.find((c) => c.name === 'snapshot() concurrency 1');
  if (one) {
    const all = sys.cases.find((c) => c.name === 'pagewalk snapshot()');
    add(
      `snapshot() speed-up from concurrent walks (x), ${sys.state}`,
      '> 1 on 2 cores',
      one.medianMs / all.medianMs,
      one.medianMs > all.medianMs,
      vs(one, all),
    );
  }
  return t;
}

/**
 * How fast this kernel reads pages, so that runs on two kernels compare:
 * ns per page of address space of the C pread loop and of smaps_rollup over
 * one dense process (the dense scenario stopped, else running, else the
 * stall process).
 */
function kernelSpeed(results) {
  const r =
    results.find((x) => x.id === 'dense' && x.state === 'stopped') ??
    results.find((x) => x.id === 'dense') ??
    results.find((x) => x.id === 'stall');
  const c = r?.cases.find((x) => x.kind === 'pread');
  const k = r?.cases.find((x) => x.kind === 'smapsRollup');
  if (!c || !k || !c.entries) return null;
  return {
    scenario: `${r.id}, ${r.state}`,
    pages: c.entries,
    preadNsPerPage: (c.medianMs * 1e6) / c.entries,
    smapsRollupNsPerPage: (k.medianMs * 1e6) / c.entries,
  };
}

// ---------------------------------------------------------------- output

function fmtRate(x) {
  if (x == null || !Number.isFinite(x)) return '';
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}
const fmtMsOr = (r, k) => (r.skipped || r[k] == null ? '' : fmtMs(r[k]));
const fmtRatio = (x) => (x == null ? '' : `${x.toFixed(2)}x`);
const fmtNum = (x, d = 1) => (x == null ? '' : Number(x).toFixed(d));

function tableRows(results) {
  const head = [
    'scenario',
    'case',
    'median',
    'min–max',
    'entries/s',
    'GB/s (VA)',
    'vs C pread',
    'vs JS readSync',
    'vs smaps_rollup',
    'vs smem',
    'RSS added MiB',
    'command peak MiB',
    'CPU',
    'CPU vs smaps_rollup',
  ];
  const rows = [];
  for (const r of results) {
    for (const c of r.cases) {
      rows.push([
        scenarioLabel(r),
        c.name,
        fmtMs(c.medianMs),
        `${fmtMs(c.minMs)}–${fmtMs(c.maxMs)}`,
        fmtRate(c.entriesPerSec),
        c.gbPerSec == null ? '' : c.gbPerSec.toFixed(c.gbPerSec >= 100 ? 0 : 2),
        fmtRatio(c.ratios.pread),
        fmtRatio(c.ratios.jsReadSync),
        fmtRatio(c.ratios.smapsRollup),
        fmtRatio(c.ratios.smem),
        fmtNum(c.rssAddedMiB),
        fmtNum(c.peakRssMiB),
        c.cpuMs == null ? '' : fmtMs(c.cpuMs),
        fmtRatio(c.cpuRatioSmapsRollup),
      ]);
    }
  }
  return { head, rows };
}

const scenarioLabel = (r) => (r.state ? `${r.id}, ${r.state}` : r.id);

function textTable({ head, rows }) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((x, i) => (i < 2 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function mdTable({ head, rows }) {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function targetRows(t) {
  return {
    head: ['target', 'goal', 'measured', 'met', 'figures'],
    rows: t.map((x) => [
      x.name,
      x.goal,
      x.value == null ? x.note : x.value.toFixed(x.value >= 10 ? 1 : 2),
      x.met == null ? 'pending' : x.met ? 'yes' : 'NO',
      x.figures ?? '',
    ]),
  };
}

// The breakdown's fields in the agreed order; any other field the library
// reports follows.
const TIMING_ORDER = [
  'list',
  'maps',
  'pagemap',
  'scan',
  'classify',
  'shmemSwap',
  'thp',
  'paused',
  'kpage',
  'settle',
  'walks',
  'shape',
  'total',
];

/** The library's own `timings` (median of each field over the runs), per case that returns them. */
function timingRows(results) {
  const withT = results.flatMap((r) => r.cases.filter((c) => c.timings).map((c) => [r, c]));
  const seen = new Set(withT.flatMap(([, c]) => Object.keys(c.timings)));
  const keys = [...TIMING_ORDER.filter((k) => seen.has(k)), ...[...seen].filter((k) => !TIMING_ORDER.includes(k))];
  return {
    head: ['scenario', 'case', 'wall', ...keys.map((k) => `${k} ms`)],
    rows: withT.map(([r, c]) => [
      scenarioLabel(r),
      c.name,
      fmtMs(c.medianMs),
      ...keys.map((k) => (c.timings[k] == null ? '' : c.timings[k].toFixed(c.timings[k] >= 100 ? 0 : 1))),
    ]),
  };
}

function stallRows(results) {
  const st = results.find((r) => r.id === 'stall');
  if (!st) return null;
  return {
    head: ['reader', 'reader median', 'worst stall', 'mmap+munmap calls', 'over 1 ms', 'over 100 us'],
    rows: st.cases
      .filter((c) => c.stall)
      .map((c) => [
        c.name,
        c.kind === 'idle' ? '' : fmtMs(c.medianMs),
        `${c.stall.worstMs.toFixed(3)} ms`,
        String(c.stall.calls),
        String(c.stall.over1ms),
        String(c.stall.over100us),
      ]),
  };
}

function machine() {
  const kernel = os.release();
  // `uname -rv`: the release and the build (two builds of one release can
  // read pages at very different speeds).
  const kernelBuild = `${kernel} ${os.version()}`;
  const cpu = os.cpus()[0]?.model ?? '?';
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu,
    ramGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel,
    kernelBuild,
    node: process.version,
    thp: safeRead('/sys/kernel/mm/transparent_hugepage/enabled'),
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
  };
}
function safeRead(p) {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- sweep

function memAvailableMiB() {
  const m = /^MemAvailable:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'latin1'));
  return m ? Number(m[1]) / 1024 : Number.POSITIVE_INFINITY;
}

/** The machine is shared: a point that would bring in the OOM killer is skipped and said so. */
function fits(mib) {
  const ok = mib + 2048 <= memAvailableMiB();
  if (!ok) log(`  skipped: ${mib} MiB needed, ${memAvailableMiB().toFixed(0)} MiB available`);
  return ok;
}

async function sweep(exe) {
  const out = { dense: [], sharing: [] };
  log('sweep: dense sizes');
  for (const mib of S.sweepDenseMiB) {
    if (!fits(mib)) {
      out.dense.push({ mib, skipped: `only ${(memAvailableMiB() / 1024).toFixed(1)} GiB available` });
      continue;
    }
    const sc = await startScenario(exe, ['dense', String(mib)], `dense ${gib(mib)}`);
    try {
      const row = { mib };
      for (const [k, kind] of [
        ['processMemory', 'processMemory'],
        ['walkAsync', 'walkAsync'],
        ['pread', 'pread'],
        ['smapsRollup', 'smapsRollup'],
      ]) {
        const m = await measure(`${gib(mib)} ${k}`, kind, sc.pids, {}, { runs: S.sweepRuns });
        row[k] = m.medianMs;
        if (k === 'processMemory') row.rssAddedMiB = m.rssAddedMiB;
      }
      out.dense.push(row);
    } finally {
      stopScenario(sc);
    }
  }
  log('sweep: sharing processes');
  for (const n of S.sweepProcs) {
    if (!fits(S.sweepSharedMiB + n * (S.sweepPrivateMiB + 8))) {
      out.sharing.push({ procs: n, skipped: `only ${(memAvailableMiB() / 1024).toFixed(1)} GiB available` });
      continue;
    }
    const sc = await startScenario(
      exe,
      ['shared', String(n), String(S.sweepSharedMiB), String(S.sweepPrivateMiB)],
      `${n} sharing`,
    );
    try {
      const row = { procs: n };
      for (const [k, kind] of [
        ['snapshot', 'snapshot'],
        ['processMemory', 'processMemory'],
        ['pread', 'pread'],
        ['smapsRollup', 'smapsRollup'],
      ]) {
        if (k === 'processMemory' && n > S.sweepProcessMemoryMaxProcs) continue;
        const m = await measure(`${n} procs ${k}`, kind, sc.pids, {}, { runs: S.sweepRuns });
        row[k] = m.medianMs;
        if (k === 'snapshot') {
          row.snapshotRssAddedMiB = m.rssAddedMiB;
          if (m.timings) row.snapshotTimings = m.timings;
        }
      }
      row.snapshotVsRollup = row.snapshot / row.smapsRollup;
      out.sharing.push(row);
    } finally {
      stopScenario(sc);
    }
  }
  return out;
}

const COLORS = {
  processMemory: '#d62728',
  walkAsync: '#ff7f0e',
  snapshot: '#9467bd',
  pread: '#1f77b4',
  smapsRollup: '#2ca02c',
};
const LABELS = {
  processMemory: 'pagewalk processMemory (each)',
  walkAsync: 'pagewalk walk()',
  snapshot: 'pagewalk snapshot({pids})',
  pread: 'C pread loop',
  smapsRollup: 'smaps_rollup read',
};

/** A small dependency-free line plot: x on a log2 axis, y linear from 0. */
function svgPlot({ title, xLabel, yLabel = 'median time (ms)', xs, xTick, series, refLine }) {
  const W = 560;
  const H = 340;
  const L = 64;
  const R = 200;
  const T = 36;
  const B = 48;
  const pw = W - L - R;
  const ph = H - T - B;
  const lx = xs.map((x) => Math.log2(x));
  const x0 = Math.min(...lx);
  const x1 = Math.max(...lx) === x0 ? x0 + 1 : Math.max(...lx);
  const ymaxRaw = Math.max(...series.flatMap((s) => s.ys.filter((y) => y != null)), refLine?.y ?? 0);
  const step = niceStep(ymaxRaw / 5);
  const ymax = Math.ceil(ymaxRaw / step) * step || 1;
  const X = (x) => L + ((Math.log2(x) - x0) / (x1 - x0)) * pw;
  const Y = (y) => T + ph - (y / ymax) * ph;
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="20" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let y = 0; y <= ymax + 1e-9; y += step) {
    parts.push(`<line x1="${L}" x2="${L + pw}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">${+y.toFixed(3)}</text>`);
  }
  for (const x of xs) {
    parts.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${T}" y2="${T + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${X(x).toFixed(1)}" y="${T + ph + 16}" text-anchor="middle">${esc(xTick(x))}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#333"/>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#333"/>`);
  parts.push(`<text x="${L + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  if (refLine) {
    const y = Y(refLine.y).toFixed(1);
    parts.push(`<line x1="${L}" x2="${L + pw}" y1="${y}" y2="${y}" stroke="#d62728" stroke-dasharray="5 4"/>`);
    parts.push(
      `<text x="${L + pw - 4}" y="${(Y(refLine.y) + 13).toFixed(1)}" text-anchor="end" fill="#d62728">${esc(refLine.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    // A series may stop early (a case left out at large counts): its points end there.
    const at = xs.map((x, j) => [x, s.ys[j]]).filter(([, y]) => y != null);
    const pts = at.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`);
    for (const [x, y] of at)
      parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = T + 10 + i * 18;
    parts.push(
      `<line x1="${L + pw + 12}" x2="${L + pw + 32}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${L + pw + 36}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function drawSweep(sw) {
  const docs = opts.plots;
  fs.mkdirSync(docs, { recursive: true });
  const dense = sw.dense.filter((r) => !r.skipped);
  const files = [];
  if (dense.length) {
    const f = path.join(docs, 'bench-dense.svg');
    fs.writeFileSync(
      f,
      svgPlot({
        title: 'Dense anonymous process: time vs size',
        xLabel: 'resident size',
        xs: dense.map((r) => r.mib),
        xTick: (x) => gib(x),
        series: ['processMemory', 'walkAsync', 'pread', 'smapsRollup'].map((k) => ({
          name: LABELS[k],
          color: COLORS[k],
          ys: dense.map((r) => r[k]),
        })),
      }),
    );
    files.push(f);
  }
  const sh = sw.sharing.filter((r) => !r.skipped);
  if (sh.length) {
    const f = path.join(docs, 'bench-sharing.svg');
    fs.writeFileSync(
      f,
      svgPlot({
        title: `Processes sharing ${gib(S.sweepSharedMiB)}: time vs count`,
        xLabel: 'processes',
        xs: sh.map((r) => r.procs),
        xTick: (x) => String(x),
        series: ['snapshot', 'processMemory', 'pread', 'smapsRollup'].map((k) => ({
          name: LABELS[k],
          color: COLORS[k],
          ys: sh.map((r) => r[k]),
        })),
      }),
    );
    files.push(f);
    const g = path.join(docs, 'bench-sharing-ratio.svg');
    fs.writeFileSync(
      g,
      svgPlot({
        title: `Processes sharing ${gib(S.sweepSharedMiB)}: time / smaps_rollup time`,
        xLabel: 'processes',
        yLabel: 'time / reading every smaps_rollup',
        xs: sh.map((r) => r.procs),
        xTick: (x) => String(x),
        series: [
          { name: 'snapshot({pids})', color: COLORS.snapshot, ys: sh.map((r) => r.snapshot / r.smapsRollup) },
          {
            name: `processMemory each (to ${S.sweepProcessMemoryMaxProcs})`,
            color: COLORS.processMemory,
            ys: sh.map((r) => (r.processMemory == null ? null : r.processMemory / r.smapsRollup)),
          },
          { name: 'C pread loop', color: COLORS.pread, ys: sh.map((r) => r.pread / r.smapsRollup) },
          { name: 'smaps_rollup (= 1)', color: COLORS.smapsRollup, ys: sh.map(() => 1) },
        ],
        refLine: { y: 0.5, label: 'target 0.5' },
      }),
    );
    files.push(g);
  }
  return files;
}

// ---------------------------------------------------------------- entry

async function main() {
  if (!fs.existsSync(path.join(DIST, 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  if (process.getuid && process.getuid() !== 0)
    log('bench: not root: pagewalk falls back to smaps_rollup and the figures mean little');
  if (opts.render) {
    // Tables of a saved run (--save), without measuring anything.
    return output(JSON.parse(fs.readFileSync(opts.render, 'utf8')));
  }
  const began = Date.now();
  const exe = compile('scenario');
  preadExe = compile('pread_walk');
  execExe = compile('exec_rusage');
  const report = {
    machine: machine(),
    scale: opts.scale,
    runs: opts.runs,
    warmup: opts.warmup,
    sizes: S,
    scenarios: [],
    targets: [],
  };
  if (!opts.sweepOnly) {
    report.scenarios = await mainRun(exe);
    report.kernelSpeed = kernelSpeed(report.scenarios);
    report.targets = targets(report.scenarios);
  }
  if (opts.sweep) {
    report.sweep = await sweep(exe);
    report.sweepSvgs = drawSweep(report.sweep).map((f) => path.relative(ROOT, f));
  }
  report.elapsedS = (Date.now() - began) / 1000;
  output(report);
}

function output(report) {
  const m = report.machine;
  const ks = report.kernelSpeed;
  const speed = ks
    ? `; kernel speed (${ks.scenario}): C pread loop ${ks.preadNsPerPage.toFixed(2)} ns/page, smaps_rollup ${ks.smapsRollupNsPerPage.toFixed(2)} ns/page`
    : '';
  const header = `pagewalk benchmarks, ${m.date}: ${m.nproc} CPUs (${m.cpu}), ${m.ramGiB} GiB RAM, Linux ${m.kernelBuild ?? m.kernel}, Node ${m.node}, load average ${m.loadavg.join(' ')}; scale ${report.scale}, ${report.runs} runs after ${report.warmup} warm-up${speed}`;
  out(`\n${header}\n`);
  if (report.scenarios.length) {
    out(textTable(tableRows(report.scenarios)));
    out(
      '\nratios are time / baseline time (below 1: pagewalk faster); GB/s is address space covered per second;\n' +
        'RSS added: peak RSS one call adds to its process; command peak: peak RSS of the whole command;\n' +
        'CPU: CPU time (user + system, every thread) of the measuring process or the whole command per run\n',
    );
    const tr = timingRows(report.scenarios);
    if (tr.rows.length) {
      out("where the time goes (the library's own timings, median per field over the runs):\n");
      out(`${textTable(tr)}\n`);
    } else out('where the time goes: this build reports no timings\n');
    const sr = stallRows(report.scenarios);
    if (sr) out(`stall scenario: the measured process's own mmap+munmap latency per reader:\n${textTable(sr)}\n`);
    out(textTable(targetRows(report.targets)));
  }
  if (report.sweep) {
    out(`\nsweep: dense ${JSON.stringify(report.sweep.dense)}\nsweep: sharing ${JSON.stringify(report.sweep.sharing)}`);
    out(`drawn: ${report.sweepSvgs.join(', ')}`);
  }
  out(`\n(${report.elapsedS.toFixed(0)} s)`);
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (opts.save && !opts.render) fs.rmSync(`${opts.save}.partial`, { force: true });
  if (opts.save && !opts.render) fs.writeFileSync(opts.save, `${JSON.stringify(report, null, 2)}\n`);
  if (opts.markdown) {
    const parts = [`_${header}_`, ''];
    if (report.scenarios.length) {
      parts.push(mdTable(tableRows(report.scenarios)), '');
      const tr = timingRows(report.scenarios);
      if (tr.rows.length) parts.push(mdTable(tr), '');
      const sr = stallRows(report.scenarios);
      if (sr) parts.push(mdTable(sr), '');
      parts.push(mdTable(targetRows(report.targets)), '');
    }
    if (report.sweep) {
      parts.push(
        mdTable({
          head: ['dense size', 'processMemory', 'walk()', 'C pread', 'smaps_rollup', 'RSS added MiB'],
          rows: report.sweep.dense.map((r) => [
            gib(r.mib),
            r.skipped ? `skipped: ${r.skipped}` : fmtMs(r.processMemory),
            fmtMsOr(r, 'walkAsync'),
            fmtMsOr(r, 'pread'),
            fmtMsOr(r, 'smapsRollup'),
            fmtNum(r.rssAddedMiB),
          ]),
        }),
        '',
      );
      parts.push(
        mdTable({
          head: [
            'sharing processes',
            'snapshot({pids})',
            'processMemory each',
            'C pread',
            'smaps_rollup',
            'snapshot / smaps_rollup',
            'snapshot RSS added MiB',
          ],
          rows: report.sweep.sharing.map((r) => [
            String(r.procs),
            r.skipped ? `skipped: ${r.skipped}` : fmtMs(r.snapshot),
            fmtMsOr(r, 'processMemory'),
            fmtMsOr(r, 'pread'),
            fmtMsOr(r, 'smapsRollup'),
            r.skipped ? '' : fmtRatio(r.snapshotVsRollup),
            fmtNum(r.snapshotRssAddedMiB),
          ]),
        }),
        '',
      );
    }
    fs.writeFileSync(opts.markdown, parts.join('\n'));
  }
}

main()
  .catch((err) => {
    killAll();
    log(`bench: ${err.stack || err}`);
    process.exitCode = 1;
  })
  .finally(killAll);
