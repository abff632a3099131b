// Run as an unprivileged user by test/privilege.test.ts:
//   node unprivileged-probe.js ROOT PID OTHER_PID
// Loads pagewalk from ROOT/dist (the built addon under ROOT/build), measures
// PID (owned by the same user) and OTHER_PID (owned by root), and prints
// one JSON line with what it saw.

const fs = require('node:fs');
const path = require('node:path');

const [root, pidArg, otherArg] = process.argv.slice(2);
const pid = Number(pidArg);
const other = Number(otherArg);
const pw = require(path.join(root, 'dist', 'index.js'));

function rollupKb(p) {
  const out = {};
  for (const line of fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function errorFields(err) {
  return {
    name: err.name,
    code: err.code,
    errno: err.errno,
    syscall: err.syscall,
    path: err.path,
    message: err.message,
  };
}

(async () => {
  const out = { uid: process.getuid(), hasSysAdmin: pw.hasSysAdmin(), kpageReadable: pw.kpageReadable() };
  const before = rollupKb(pid);
  const r = await pw.processMemory(pid);
  const after = rollupKb(pid);
  out.memory = {
    source: r.source,
    pfnsVisible: r.pfnsVisible,
    partial: r.partial,
    kb: {
      Rss: Math.floor(r.rss / 1024),
      Pss: Math.floor(r.pss / 1024),
      Pss_Anon: Math.floor(r.pssAnon / 1024),
      Pss_File: Math.floor(r.pssFile / 1024),
      Private: Math.floor(r.uss / 1024),
      Swap: Math.floor(r.swap / 1024),
      Anonymous: Math.floor(r.anonymous / 1024),
    },
  };
  const pick = (k) => ({
    Rss: k.Rss,
    Pss: k.Pss,
    Pss_Anon: k.Pss_Anon,
    Pss_File: k.Pss_File,
    Private: k.Private_Clean + k.Private_Dirty,
    Swap: k.Swap,
    Anonymous: k.Anonymous,
  });
  out.rollupBefore = pick(before);
  out.rollupAfter = pick(after);
  try {
    await pw.processMemory(pid, { unprivileged: 'error' });
    out.strict = null;
  } catch (err) {
    out.strict = errorFields(err);
  }
  const s = await pw.snapshot({ pids: [pid, other] });
  out.snapshot = {
    source: s.source,
    processes: s.processes.map((p) => ({ pid: p.pid, source: p.source, rssKb: Math.floor(p.rss / 1024) })),
    gone: s.gone,
  };
  try {
    await pw.snapshot({ pids: [pid], unprivileged: 'error' });
    out.snapshotStrict = null;
  } catch (err) {
    out.snapshotStrict = errorFields(err);
  }
  const h = pw.openPagemap(pid);
  const anon = pw.readMaps(pid).find((m) => m.path === '' && m.write);
  const entries = h.read(anon.start, Math.min(anon.size / 4096, 1024));
  out.counts = pw.countStates(entries);
  h.close();
  try {
    pw.openPagemap(other);
    out.otherOpen = null;
  } catch (err) {
    out.otherOpen = errorFields(err);
  }
  try {
    await pw.processMemory(other);
    out.otherMemory = null;
  } catch (err) {
    out.otherMemory = errorFields(err);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((err) => {
  process.stdout.write(`${JSON.stringify({ fatal: errorFields(err), stack: err.stack })}\n`);
  process.exitCode = 1;
});
