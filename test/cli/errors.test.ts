// The command's exit codes, one-line messages, help, and advice without privilege.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execed, type JsonProcess, rollup, run, start, TAG, useCliFixtures } from '../helpers/cli';
import { copyBuiltPackage } from '../helpers/dist';

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
      [['group'], /^pagewalk: required option '-P, --processfilter <regex>' not specified\n$/],
      [['nosuchcommand', 'x'], /^pagewalk: /],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('has --help for every command', () => {
    for (const cmd of ['smem', 'show', 'libs', 'pages', 'group', 'picture']) {
      const r = run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: pagewalk ${cmd}`);
    }
    expect(run(['--help']).stdout).toMatch(/Commands:[\s\S]*smem[\s\S]*picture/);
  });

  it('names CAP_SYS_ADMIN when run without privilege', async () => {
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    // nobody may not be able to enter the checkout: run a readable copy.
    const pkg = copyBuiltPackage();
    const asNobody = (args: string[]) => run(args, nobody, path.join(pkg, 'dist', 'cli', 'main.js'));
    const tag2 = String(Number(TAG) + 1);
    const c = start('sleep', [tag2], nobody);
    await execed(c.pid as number, `sleep ${tag2}`);
    const show = asNobody(['show', String(c.pid)]);
    expect(show.code).toBe(1);
    expect(show.stderr).toBe('pagewalk: per-mapping figures needs CAP_SYS_ADMIN (run as root)\n');
    const group = asNobody(['group', '-P', `^sleep ${tag2}$`]);
    expect(group.code).toBe(1);
    expect(group.stderr).toBe('pagewalk: group accounting needs CAP_SYS_ADMIN (run as root)\n');
    // smem still answers, from smaps_rollup, and says so.
    const smem = asNobody(['smem', '-P', `^sleep ${tag2}$`, '--json']);
    expect(smem.code).toBe(0);
    expect(smem.stderr).toMatch(/^pagewalk: warning: .*CAP_SYS_ADMIN/);
    const procs = JSON.parse(smem.stdout).processes as JsonProcess[];
    expect(procs.map((p) => p.pid)).toEqual([c.pid]);
    const k = rollup(c.pid as number);
    expect(Math.floor(procs[0].rss / 1024)).toBe(k.Rss);
    expect(Math.floor(procs[0].uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
    fs.rmSync(pkg, { recursive: true, force: true });
  });
});
