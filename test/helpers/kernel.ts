// What the kernel under test does, probed once per test file by
// test/fixtures/kernel-probe.c (raw system calls, never the addon). Tests
// assert the behaviour found here, and a case that cannot apply is skipped
// with the probe's answer printed (skipUnless).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fixtureBin, withoutPreload } from './fixture';

/** How a range of pages looked in the prober's pagemap and kpageflags. */
export interface Look {
  present: number;
  /** Distinct frames among the present pages. */
  distinct: number;
  /** Frames flagged KPF_ZERO_PAGE. */
  zero: number;
  /** Frames flagged KPF_THP (not the huge zero page). */
  thp: number;
}

interface Raw {
  kpageflagsErrno: number;
  readFault: Look;
  devZeroReadFault: Look;
  uffdZeroPageErrno: number;
  uffdZeroPage: Look;
  madviseHugepageErrno: number;
  hugeReadFault: Look;
  hugeWritten: Look;
  madviseMergeableErrno: number;
  guardInstallErrno: number;
  pagemapScanErrno: number;
  scanGuardErrno: number;
  scanUnknownCategoryErrno: number;
  procmapQueryErrno: number;
  cachestatErrno: number;
  pageSize: number;
}

export interface Kernel {
  raw: Raw;
  /** `uname -rv`, for the skip messages. */
  release: string;
  /**
   * What a read fault in private anonymous memory maps: the shared zero page
   * (every page one frame, KPF_ZERO_PAGE), or a page of its own (as many
   * frames as pages, none the zero page). 'mixed' is neither: no test can
   * say what to expect of it.
   */
  readFault: 'zero page' | 'own page' | 'mixed';
  /** UFFDIO_ZEROPAGE maps the zero page on request (a way to it that takes no fault). */
  uffdZeroPage: boolean;
  /** A MADV_HUGEPAGE range only read maps the huge zero page. */
  hugeZeroPage: boolean;
  /** A written MADV_HUGEPAGE range gets a transparent huge page. */
  thp: boolean;
  /** KSM is built in: /sys/kernel/mm/ksm exists and MADV_MERGEABLE is taken. */
  ksm: boolean;
  /** MADV_GUARD_INSTALL (6.13+). */
  guardRegions: boolean;
  /** The PAGEMAP_SCAN ioctl (6.7+). */
  pagemapScan: boolean;
  /** PAGEMAP_SCAN knows the guard category (6.15+). */
  scanGuardCategory: boolean;
  /** The PROCMAP_QUERY ioctl on /proc/PID/maps (6.11+). */
  procmapQuery: boolean;
  /** cachestat(2) (6.5+). */
  cachestat: boolean;
  /** The page size in bytes. */
  pageSize: number;
}

function lookIs(l: Look, pages: number, what: 'zero page' | 'own page'): boolean {
  if (l.present !== pages) return false;
  return what === 'zero page' ? l.distinct === 1 && l.zero === pages : l.distinct === pages && l.zero === 0;
}

let cached: Kernel | undefined;

/** The probe's findings (run on first use, then kept for the test file). */
export function kernel(): Kernel {
  if (cached) return cached;
  const probe = execFileSync(fixtureBin('kernel-probe'), { encoding: 'utf8', env: withoutPreload(process.env) });
  const raw = JSON.parse(probe) as Raw;
  if (raw.kpageflagsErrno !== 0)
    throw new Error(
      `the kernel probe cannot read /proc/kpageflags (errno ${raw.kpageflagsErrno}): run the tests as root`,
    );
  const readFault = lookIs(raw.readFault, 32, 'zero page')
    ? 'zero page'
    : lookIs(raw.readFault, 32, 'own page')
      ? 'own page'
      : 'mixed';
  cached = {
    raw,
    release: execFileSync('uname', ['-rv'], { encoding: 'utf8' }).trim(),
    readFault,
    uffdZeroPage: raw.uffdZeroPageErrno === 0 && lookIs(raw.uffdZeroPage, 32, 'zero page'),
    hugeZeroPage: raw.madviseHugepageErrno === 0 && raw.hugeReadFault.zero === 512,
    thp: raw.madviseHugepageErrno === 0 && raw.hugeWritten.thp === 512,
    ksm: fs.existsSync('/sys/kernel/mm/ksm/run') && raw.madviseMergeableErrno === 0,
    guardRegions: raw.guardInstallErrno === 0,
    pagemapScan: raw.pagemapScanErrno === 0,
    scanGuardCategory: raw.pagemapScanErrno === 0 && raw.scanGuardErrno === 0,
    procmapQuery: raw.procmapQueryErrno === 0,
    cachestat: raw.cachestatErrno === 0,
    pageSize: raw.pageSize,
  };
  return cached;
}

/** Any way this kernel has of mapping the 4 KiB zero page into a process, as layouts.c regions. */
export function zeroPageRegions(): ('zero' | 'uffdZero')[] {
  const k = kernel();
  return [...(k.readFault === 'zero page' ? ['zero' as const] : []), ...(k.uffdZeroPage ? ['uffdZero' as const] : [])];
}

/**
 * Skips the running test, naming what the probe found, unless `applies`.
 * `ctx` is the test's context (its `skip`).
 */
export function skipUnless(ctx: { skip: (note?: string) => void }, applies: boolean, why: string): void {
  if (applies) return;
  const note = `skipped on ${kernel().release}: ${why}`;
  console.log(note);
  ctx.skip(note);
}

/** One line of what the probe found, printed once by the global setup. */
export function describeKernel(): string {
  const k = kernel();
  const has = (name: string, yes: boolean) => `${name} ${yes ? 'yes' : 'no'}`;
  return [
    `kernel ${k.release}: read faults map ${k.readFault === 'own page' ? 'pages of their own' : `the ${k.readFault}`}`,
    has('UFFDIO_ZEROPAGE', k.uffdZeroPage),
    has('huge zero page', k.hugeZeroPage),
    has('THP', k.thp),
    has('KSM', k.ksm),
    has('guard regions', k.guardRegions),
    has('PAGEMAP_SCAN', k.pagemapScan),
    has('its guard category', k.scanGuardCategory),
    has('PROCMAP_QUERY', k.procmapQuery),
    has('cachestat', k.cachestat),
    `page size ${k.pageSize}`,
  ].join('; ');
}
