#!/usr/bin/env node
// The pagewalk command as installed (package.json "bin"): V8's flags for a
// short-lived process, then the program (main.ts). A one-shot command lives
// for a second or two and its work is in the addon, so V8's optimizing
// compilers (Maglev, TurboFan) would page megabytes of their own code in to
// speed up JavaScript that runs a few times: the baseline compiler alone
// keeps the command's peak RSS about 4 MB lower at the same CPU time
// (docs/performance.md, "Issue 17: the smem command's own memory"). The
// commands that run until stopped (serve, top, record) shape a snapshot
// every few seconds for days, where optimized code pays for itself: they
// keep V8's defaults, as the library's own hosts do. The flag must be set
// before the program's modules load, so main is required after it (an
// import would run first).
import * as v8 from 'node:v8';

const LONG_RUNNING = new Set(['serve', 'top', 'record']);

// The subcommand is the first argument that is not an option (the program
// takes no option with a separate value before it).
const subcommand = process.argv.slice(2).find((a) => !a.startsWith('-'));
if (subcommand === undefined || !LONG_RUNNING.has(subcommand)) v8.setFlagsFromString('--max-opt=1');
const { main } = require('./main') as typeof import('./main');
main(process.argv).then((code) => {
  process.exitCode = code;
});
