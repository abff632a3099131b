// The command's exit codes, one-line messages and help (without privilege: unprivileged.test.ts).
import { describe, expect, it } from 'vitest';
import { run, useCliFixtures } from '../helpers/cli';

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
      [['nosuchcommand', 'x'], /^pagewalk: /],
      // One parser per kind of value: the same words from every command.
      [['top', '-b', '-d', 'soon'], /^pagewalk: invalid -d "soon": expected seconds \(a number, 0 or more\)\n$/],
      [['serve', '--min-interval', '-1'], /^pagewalk: invalid --min-interval "-1": expected seconds/],
      [['record', '-n', '0'], /^pagewalk: invalid -n "0": expected a whole number, 1 or more\n$/],
      [['top', '-b', '--by', 'pid'], /^pagewalk: invalid --by "pid" \(known: name exe user cgroup\)\n$/],
      [['serve', '--group-by', 'pid'], /^pagewalk: invalid --group-by "pid" \(known: name exe user cgroup\)\n$/],
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
