// Unprivileged callers: run as nobody (setpriv, util-linux) against a
// process nobody owns, the library must give smaps_rollup's figures and say
// so, or refuse with EPERM when asked to. And, whoever runs it, the library
// spawns nothing and reads only /proc, /sys/kernel/mm and /etc/passwd.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBuiltPackage, haveTool, repoRoot } from './helpers/dist';
import { fixtureBin } from './helpers/fixture';
import { killAllProcs, type Proc, startChurn, startProc } from './helpers/procs';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const haveSetpriv = haveTool('setpriv');
const haveStrace = haveTool('strace');
if (!haveSetpriv) console.warn('privilege.test: setpriv (apt: util-linux) missing, unprivileged runs skipped');
if (!haveStrace) console.warn('privilege.test: strace (apt: strace) missing, syscall trace skipped');

let pkg: string;
beforeAll(() => {
  pkg = copyBuiltPackage([
    path.join(__dirname, 'helpers', 'unprivileged-probe.js'),
    path.join(__dirname, 'helpers', 'strace-probe.js'),
    fixtureBin('churn'),
  ]);
});
afterAll(async () => {
  await killAllProcs();
  if (pkg) fs.rmSync(pkg, { recursive: true, force: true });
});

describe.runIf(isRoot && haveSetpriv)('as nobody, measuring a process nobody owns', () => {
  let mine: Proc;
  let root: Proc;
  // biome-ignore lint/suspicious/noExplicitAny: the probe's JSON
  let seen: any;
  beforeAll(async () => {
    mine = await startProc(path.join(pkg, 'churn'), ['idle'], { uid: NOBODY, gid: NOBODY, cwd: '/' });
    root = await startChurn(['idle']);
    mine.child.kill('SIGSTOP');
    const out = execFileSync(
      'setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '--',
        process.execPath,
        path.join(pkg, 'unprivileged-probe.js'),
        pkg,
        String(mine.pid),
        String(root.pid),
      ],
      { cwd: '/', encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    );
    seen = JSON.parse(out.trim().split('\n').pop() as string);
  });
  afterAll(async () => {
    mine?.child.kill('SIGCONT');
  });

  it('runs without privilege', () => {
    expect(seen.fatal).toBeUndefined();
    expect(seen).toMatchObject({ uid: NOBODY, hasSysAdmin: false, kpageReadable: false });
  });

  it('pagemap shows present pages with PFN 0: countStates says pfnsVisible false', () => {
    expect(seen.counts.present).toBeGreaterThan(0);
    expect(seen.counts.presentWithPfn).toBe(0);
    expect(seen.counts.pfnsVisible).toBe(false);
  });

  it("processMemory degrades to source 'smaps_rollup' with its figures", () => {
    expect(seen.memory).toMatchObject({ source: 'smaps_rollup', pfnsVisible: false, partial: false });
    expect(seen.rollupBefore).toEqual(seen.rollupAfter); // stopped: nothing moved
    expect(seen.memory.kb).toEqual(seen.rollupAfter);
  });

  it("unprivileged: 'error' is an EPERM error naming CAP_SYS_ADMIN", () => {
    expect(seen.strict).toMatchObject({
      code: 'EPERM',
      path: `/proc/${mine.pid}/pagemap`,
      syscall: expect.any(String),
    });
    expect(seen.strict.message).toMatch(/CAP_SYS_ADMIN/);
    expect(seen.snapshotStrict).toMatchObject({ code: 'EPERM' });
    expect(seen.snapshotStrict.message).toMatch(/CAP_SYS_ADMIN/);
  });

  it("snapshot measures the user's process from smaps_rollup and lists root's as denied", () => {
    expect(seen.snapshot.source).toBe('smaps_rollup');
    expect(seen.snapshot.processes).toEqual([{ pid: mine.pid, source: 'smaps_rollup', rssKb: seen.rollupAfter.Rss }]);
    expect(seen.snapshot.gone).toEqual([expect.objectContaining({ pid: root.pid, reason: 'denied' })]);
  });

  it("another user's process: EACCES with code, errno, syscall and path", () => {
    expect(seen.otherOpen).toMatchObject({
      code: 'EACCES',
      errno: -13,
      syscall: 'open',
      path: `/proc/${root.pid}/pagemap`,
    });
    expect(seen.otherMemory).toMatchObject({ code: 'EACCES', errno: -13 });
  });
});

describe('what the library touches', () => {
  // Where the library may read, and why: docs/reliability.md ("What it touches").
  const allowed = [
    /^\/proc\b/, // pagemap, kpage*, maps, status, ...
    /^\/sys\/kernel\/mm\b/, // KSM, THP and hugetlb state
    /^\/etc\/passwd$/, // user names
    /^\/var\/log$/, // the kubelet's log directories, for the Kubernetes grouping keys only
    /^\/memfd:$/, // not a path: how a memfd's link names it
    /^\/SYSV$/, // not a path: how a SysV segment's link names it
  ];
  it('no module reachable from lib/index.ts imports child_process or names a path outside its documented list', () => {
    const seen = new Set<string>();
    const queue = [path.join(repoRoot, 'lib', 'index.ts')];
    while (queue.length) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      // Comments may show example paths (cgroup forms, log names): only code counts.
      const src = fs
        .readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
      expect([
        file,
        /child_process|worker_threads|(?<![.\w])(exec|execFile|execFileSync|execSync|spawn|spawnSync|fork)\(/.test(src),
      ]).toEqual([file, false]);
      for (const m of src.matchAll(/from '(\.\.?\/[\w/]+)'/g))
        queue.push(`${path.resolve(path.dirname(file), m[1])}.ts`);
      // Every literal path the TypeScript opens.
      for (const m of src.matchAll(/['`](\/[a-z][^'`$]*)/gi)) {
        expect([file, m[1], allowed.some((re) => re.test(m[1]))]).toEqual([file, m[1], true]);
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    const native = fs
      .readdirSync(path.join(repoRoot, 'native'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => fs.readFileSync(path.join(e.parentPath, e.name), 'utf8'));
    for (const src of native) expect(/\b(execv|execl|system|popen|fork|posix_spawn)\s*\(/.test(src)).toBe(false);
  });

  it.runIf(isRoot && haveStrace)(
    'strace: no exec, fork or clone without CLONE_THREAD, and every open under /proc, /sys/kernel/mm or /etc/passwd',
    async () => {
      const target = await startChurn(['idle']);
      const log = path.join(pkg, 'trace.log');
      execFileSync(
        'strace',
        [
          '-f',
          '-qq',
          '-e',
          'trace=open,openat,openat2,execve,execveat,clone,clone3,fork,vfork',
          '-o',
          log,
          process.execPath,
          path.join(pkg, 'strace-probe.js'),
          pkg,
          String(target.pid),
        ],
        { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines = fs.readFileSync(log, 'utf8').split('\n');
      const begin = lines.findIndex((l) => l.includes('pagewalk-marker-begin'));
      const end = lines.findIndex((l) => l.includes('pagewalk-marker-end'));
      expect(begin).toBeGreaterThan(0);
      expect(end).toBeGreaterThan(begin);
      const window = lines.slice(begin + 1, end);
      // Threads of the library's own are allowed (clone with CLONE_THREAD);
      // a new process or program never is.
      expect(window.filter((l) => /\b(execve|execveat|fork|vfork)\(/.test(l))).toEqual([]);
      expect(window.filter((l) => /\bclone3?\(/.test(l) && !l.includes('CLONE_THREAD'))).toEqual([]);
      const opened = new Set<string>();
      for (const l of window) {
        const m = /open(?:at2?)?\((?:[^,]+, )?"([^"]+)"/.exec(l);
        if (m) opened.add(m[1]);
      }
      // /sys/devices/system/cpu/online: libuv, behind os.availableParallelism()
      // (the default snapshot concurrency), not the library's own read.
      const outside = [...opened].filter(
        (p) => !/^\/proc(\/|$)|^\/sys\/kernel\/mm\/|^\/etc\/passwd$|^\/sys\/devices\/system\/cpu\/online$/.test(p),
      );
      expect(outside).toEqual([]);
      // It did read what it should.
      expect([...opened].some((p) => p === `/proc/${target.pid}/pagemap`)).toBe(true);
      expect([...opened].some((p) => p === '/proc/kpagecount')).toBe(true);
      console.log(`strace: ${opened.size} distinct paths opened, all under /proc, /sys/kernel/mm or /etc/passwd`);
    },
  );
});
