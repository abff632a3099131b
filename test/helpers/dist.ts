// The built package (dist/ and the addon) for tests that load it outside
// vitest: worker threads, child processes, other users.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');

/** The newest modification time of a file below `dir` (or of `dir` itself, a file). */
function newestMtime(dir: string): number {
  const st = fs.statSync(dir);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of fs.readdirSync(dir)) newest = Math.max(newest, newestMtime(path.join(dir, entry)));
  return newest;
}

/**
 * Whether dist/ was compiled after every source it comes from changed. tsc
 * rewrites every output, so dist/index.js is as old as the whole build.
 */
function distUpToDate(): boolean {
  const stamp = path.join(repoRoot, 'dist', 'index.js');
  if (!fs.existsSync(stamp) || !fs.existsSync(path.join(repoRoot, 'dist', 'index.mjs'))) return false;
  const sources = ['lib', 'tsconfig.json', 'tsconfig.build.json', 'scripts/write-esm-wrapper.js'];
  return sources.every((s) => newestMtime(path.join(repoRoot, s)) <= fs.statSync(stamp).mtimeMs);
}

let built = false;
/**
 * Compiles lib/ to dist/ (npm run build:ts) once per test file, unless dist/
 * is newer than every source: the compile takes 10 s of CPU, 30 s on a busy
 * machine, which each test file that loads dist/ paid again.
 */
export function buildDist(): void {
  if (built) return;
  if (!distUpToDate())
    execFileSync('npm', ['run', 'build:ts', '--silent'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  built = true;
}

/**
 * A copy of the built package (dist, build/Release, runtime dependencies) in
 * a fresh directory everybody may read, for runs as another user: the
 * checkout itself may sit below a directory only root can enter. Returns its
 * path; remove it with fs.rmSync(dir, { recursive: true }).
 */
export function copyBuiltPackage(extra: string[] = []): string {
  buildDist();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-pkg-'));
  fs.cpSync(path.join(repoRoot, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(
    path.join(repoRoot, 'build', 'Release', 'pagewalk.node'),
    path.join(dir, 'build', 'Release', 'pagewalk.node'),
  );
  // The runtime dependencies, as package.json lists them, and theirs (npm
  // hoists them into the top node_modules).
  for (const dep of runtimeDependencies()) {
    fs.cpSync(path.join(repoRoot, 'node_modules', dep), path.join(dir, 'node_modules', dep), { recursive: true });
  }
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  for (const f of extra) fs.copyFileSync(f, path.join(dir, path.basename(f)));
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return dir;
}

/** Every package the built package loads at run time: its dependencies and theirs. */
function runtimeDependencies(): string[] {
  const deps = (dir: string): string[] => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies });
  };
  const seen = new Set<string>();
  const queue = deps(repoRoot);
  while (queue.length > 0) {
    const dep = queue.pop() as string;
    const at = path.join(repoRoot, 'node_modules', dep);
    if (seen.has(dep) || !fs.existsSync(at)) continue; // nested copies travel with their parent
    seen.add(dep);
    queue.push(...deps(at));
  }
  return [...seen];
}

/** Whether an executable is on PATH. */
export function haveTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
