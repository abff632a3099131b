// readFacts() (native/proc_facts.cc) reads stat, status, cmdline and exe in
// one call: every field must equal what the TypeScript readers of the same
// files give, for an ordinary process, one whose name holds spaces and
// parentheses, a zombie, a kernel thread and this process; and a pid with
// no process gives the Node-style error of its stat.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCmdline } from '../lib/proc/cmdline';
import { readExe } from '../lib/proc/exe';
import { FACTS_CMDLINE, FACTS_EXE, FACTS_STATUS, readFacts } from '../lib/proc/facts';
import { readStat } from '../lib/proc/stat';
import { readStatus } from '../lib/proc/status';
import { fixtureBin } from './helpers/fixture';
import { freePid, kernelThreadPid, killAllProcs, type Proc, startChurn, startProc } from './helpers/procs';

const ALL = FACTS_STATUS | FACTS_CMDLINE | FACTS_EXE;

/** What the one-file readers say of pid, in readFacts()'s shape. */
function fromReaders(pid: number) {
  const stat = readStat(pid);
  const status = readStatus(pid);
  let command = '';
  let exe = '';
  try {
    command = readCmdline(pid);
  } catch {
    // none
  }
  try {
    exe = readExe(pid);
  } catch {
    // kernel threads and zombies have none
  }
  return {
    pid,
    ppid: stat.ppid,
    comm: stat.comm,
    state: stat.state,
    flags: stat.flags,
    startTime: Number(stat.startTime),
    uid: status.uid,
    vmSize: status.vmSize,
    vmRss: status.vmRss,
    command,
    exe,
  };
}

let dir: string;
let idle: Proc;
let oddName: Proc;
let zombieParent: Proc;
beforeAll(async () => {
  idle = await startChurn(['idle']);
  // comm is the name the program was started by, spaces and parentheses kept.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-facts-'));
  const odd = path.join(dir, 'a) (b c');
  fs.symlinkSync(fixtureBin('churn'), odd);
  oddName = await startProc(odd, ['idle', 'with spaces', 'é']);
  zombieParent = await startChurn(['zombie']);
});
afterAll(async () => {
  await killAllProcs();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('readFacts', () => {
  it('equals the one-file readers for a sleeping process', () => {
    // The process sleeps: its state, RSS and VSS stay put between the reads.
    expect(readFacts(idle.pid, ALL)).toEqual(fromReaders(idle.pid));
  });

  it('keeps a name with spaces and parentheses, and arguments as the cmdline reader joins them', () => {
    const f = readFacts(oddName.pid, ALL);
    expect(f.comm).toBe('a) (b c');
    expect(f.command).toBe(`${path.join(dir, 'a) (b c')} idle with spaces é`);
    expect(f).toEqual(fromReaders(oddName.pid));
  });

  it('a zombie: its stat and status, no exe, no arguments', () => {
    const z = Number(zombieParent.line);
    const f = readFacts(z, ALL);
    expect([f.state, f.ppid, f.exe, f.command, f.vmSize]).toEqual(['Z', zombieParent.pid, '', '', 0]);
    expect(f).toEqual(fromReaders(z));
  });

  it('a kernel thread: no mm, no exe', () => {
    const k = kernelThreadPid();
    const f = readFacts(k, ALL);
    expect([f.exe, f.command, f.vmSize, f.vmRss]).toEqual(['', '', 0, 0]);
    expect(f).toEqual(fromReaders(k));
  });

  it('this process: stat always, the other files only when asked for', () => {
    const f = readFacts(process.pid, 0);
    expect([f.pid, f.ppid, f.comm]).toEqual([process.pid, process.ppid, readStat(process.pid).comm]);
    expect([f.uid, f.vmSize, f.command, f.exe]).toEqual([0, 0, '', '']);
    expect(readFacts(process.pid, FACTS_EXE).exe).toBe(readExe(process.pid));
    expect(readFacts(process.pid, FACTS_STATUS).uid).toBe(readStatus(process.pid).uid);
  });

  it('a pid with no process: ENOENT naming its stat', () => {
    const pid = freePid();
    expect(() => readFacts(pid, ALL)).toThrow(
      expect.objectContaining({ code: 'ENOENT', errno: -2, syscall: 'open', path: `/proc/${pid}/stat` }),
    );
  });
});
