// Compiles the C fixtures, says what the kernel probe found (kernel.ts)
// and, when no swap is active, turns on a swap file for the swap tests;
// teardown turns it off and removes it, leaving the machine as it was.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeKernel } from './kernel';

const root = path.resolve(__dirname, '..', '..');
const fixtures = path.join(root, 'test', 'fixtures');
const bin = path.join(fixtures, 'bin');
const swapFile = '/var/tmp/pagewalk-test.swap';

function swapActive(): boolean {
  const lines = fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n');
  return lines.length > 1;
}

let ourSwap = false;

export function setup(): void {
  fs.mkdirSync(bin, { recursive: true });
  // sharers is linked statically: its figures are compared with the kernel's
  // while other processes start and exit, and no library page it maps may
  // change its mapcount meanwhile.
  const staticallyLinked = new Set(['sharers.c']);
  // Shared objects to preload (LD_PRELOAD), built as NAME.so.
  const sharedObjects = new Set(['page-size-shim.c']);
  for (const f of fs.readdirSync(fixtures)) {
    if (!f.endsWith('.c')) continue;
    const shared = sharedObjects.has(f);
    const out = path.join(bin, f.replace(/\.c$/, shared ? '.so' : ''));
    const link = staticallyLinked.has(f) ? ['-static'] : shared ? ['-shared', '-fPIC', '-ldl'] : [];
    execFileSync('cc', ['-O1', '-Wall', '-Wextra', '-Werror', ...link, '-o', out, path.join(fixtures, f)], {
      stdio: 'inherit',
    });
  }
  // layouts linked statically: a process that shares no library with anyone
  // (test/cli/smem.test.ts compares it with Debian's smem, exactly).
  execFileSync(
    'cc',
    [
      '-O1',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-static',
      '-o',
      path.join(bin, 'layouts-static'),
      path.join(fixtures, 'layouts.c'),
    ],
    { stdio: 'inherit' },
  );
  // What the tests will find of the kernel: their skips and branches follow it.
  try {
    console.log(describeKernel());
  } catch (err) {
    console.warn(`kernel probe: ${(err as Error).message}`);
  }
  if (!swapActive() && process.getuid?.() === 0) {
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${swapFile}`, 'bs=1M', 'count=256', 'status=none']);
      fs.chmodSync(swapFile, 0o600);
      execFileSync('mkswap', [swapFile], { stdio: 'ignore' });
      execFileSync('swapon', [swapFile]);
      ourSwap = true;
      process.env.PAGEWALK_TEST_SWAP = '1';
    } catch (err) {
      console.warn(`could not enable a swap file: ${(err as Error).message}`);
      fs.rmSync(swapFile, { force: true });
    }
  }
}

export function teardown(): void {
  if (ourSwap) {
    try {
      execFileSync('swapoff', [swapFile]);
    } finally {
      fs.rmSync(swapFile, { force: true });
    }
  }
}
