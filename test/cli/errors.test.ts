// The command's exit codes, one-line messages and help (without privilege: unprivileged.test.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fx, run, useCliFixtures } from '../helpers/cli';

useCliFixtures();

describe('errors and help', () => {
  it('exits 3 for a missing process with a one-line message', () => {
    for (const args of [
      ['show', '999999'],
      ['pages', '999999'],
      ['picture', '999999'],
    ]) {
      const r = run(args);
      expect(r.code).toBe(3);
      expect(r.stderr).toBe('pagewalk: no such process: 999999\n');
    }
  });

  it('exits 2 on usage errors without stack traces', () => {
    const cases: [string[], RegExp][] = [
      [
        ['smem', '-c', 'pid foo'],
        /^pagewalk: unknown column "foo" \(known: pid user command name maps swap uss pss rss vss\)\n$/,
      ],
      [['smem', '-P', '('], /^pagewalk: invalid regex "\(": .*\n$/],
      [['smem', '-s', 'bogus'], /^pagewalk: unknown column "bogus"/],
      [['smem', '--bogus'], /^pagewalk: unknown option '--bogus'/],
      [['show', 'abc'], /^pagewalk: invalid pid "abc"\n$/],
      [['group'], /^pagewalk: give one of -P REGEX, --by FACT or --config FILE\n$/],
      [['nosuchcommand', 'x'], /^pagewalk: unknown command 'nosuchcommand'\n$/],
      // A mistyped command is named and the nearest one suggested, not handed to smem as an operand.
      [['smme'], /^pagewalk: unknown command 'smme'\n\(Did you mean smem\?\)\n$/],
      [['sohw', '1'], /^pagewalk: unknown command 'sohw'\n\(Did you mean show\?\)\n$/],
      // One parser per kind of value: the same words from every command.
      [['top', '-b', '-d', 'soon'], /^pagewalk: invalid -d "soon": expected seconds \(a number, 0 or more\)\n$/],
      [['serve', '--min-interval', '-1'], /^pagewalk: invalid --min-interval "-1": expected seconds/],
      [['record', '-n', '0'], /^pagewalk: invalid -n "0": expected a whole number, 1 or more\n$/],
      [
        ['top', '-b', '--by', 'pid'],
        /^pagewalk: invalid --by "pid" \(known: name exe user cgroup pod container namespace\)\n$/,
      ],
      [
        ['serve', '--group-by', 'pid'],
        /^pagewalk: invalid --group-by "pid" \(known: name exe user cgroup pod container namespace\)\n$/,
      ],
      [['smem', '--lock-pauses', 'soon'], /^pagewalk: invalid --lock-pauses "soon": expected HOLD,PAUSE/],
      [['show', '1', '--lock-pauses', '0,50'], /^pagewalk: invalid --lock-pauses "0,50": .*holdMicros/],
      [['top', '-b', '--lock-pauses', '100,100001'], /^pagewalk: invalid --lock-pauses "100,100001": .*pauseMicros/],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('has --help for every command', () => {
    for (const cmd of ['smem', 'show', 'libs', 'pages', 'group', 'picture', 'top', 'record', 'diff', 'serve']) {
      const r = run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: pagewalk ${cmd}`);
    }
    expect(run(['--help']).stdout).toMatch(/Commands:[\s\S]*smem[\s\S]*picture/);
  });
});

/** A kernel thread's pid (PF_KTHREAD in /proc/PID/stat), or undefined in a pid namespace without one. */
function kernelThread(): number | undefined {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
      if (flags & 0x00200000) return Number(name);
    } catch {
      // exited
    }
  }
  return undefined;
}

describe('errors that name their cause', () => {
  it('a kernel thread is a kernel thread with no user memory, not a missing process or an empty table', (ctx) => {
    const pid = kernelThread();
    if (pid === undefined) return ctx.skip('no kernel thread is visible in this pid namespace');
    const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    for (const cmd of ['show', 'pages', 'picture']) {
      const r = run([cmd, String(pid)]);
      expect(r.code, cmd).toBe(1);
      expect(r.stdout, cmd).toBe('');
      expect(r.stderr, cmd).toBe(`pagewalk: process ${pid} (${comm}) is a kernel thread: it has no user memory\n`);
    }
  });

  it('-o naming a directory says so, before measuring', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-out-'));
    try {
      for (const args of [
        ['smem', '--pie', 'name', '-o', dir],
        ['picture', String(fx.holder), '-o', dir],
      ]) {
        const r = run(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr).toBe(`pagewalk: cannot write ${dir}: it is a directory (give a file name)\n`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.runIf(process.getuid?.() === 0)('root refused a process: the cause, not "run as root"', () => {
    it('pagewalk in a Landlock sandbox, which hides the processes outside it', (ctx) => {
      const landlocked = ['python3', path.join(__dirname, '..', 'helpers', 'landlocked.py')];
      const r = run(['show', String(fx.holder)], landlocked);
      if (r.code === 77) return ctx.skip(`no Landlock on this kernel: ${r.stderr.trim()}`);
      // Kernels differ: some (6.18.44-fc) let a Landlock domain read /proc/PID/maps and pagemap outside it.
      if (r.code === 0)
        return ctx.skip('this kernel lets a process in a Landlock domain read /proc/PID/maps outside it');
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `pagewalk: permission denied reading /proc/${fx.holder}/maps: pagewalk runs in a Landlock sandbox, which hides every process outside it\n`,
      );
    });

    it('pid 1 when even root may not read it: names what was checked, never "run as root"', (ctx) => {
      try {
        fs.closeSync(fs.openSync('/proc/1/pagemap', 'r'));
        return ctx.skip('root may read pid 1 here: nothing refuses it');
      } catch {
        // refused: the case this test is about
      }
      const r = run(['show', '1']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^pagewalk: permission denied reading \/proc\/1\/\w+: .+\n$/);
      expect(r.stderr).not.toContain('run as root');
    });
  });
});
