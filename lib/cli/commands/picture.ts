// pagewalk picture PID: the address space as an SVG, pages coloured by state.
import type { Command } from 'commander';
import { KERNEL_HALF, PAGE, PAGE_SHIFT } from '../../page';
import { openPagemap, type PagemapHandle, ScanCategory } from '../../pagemap';
import { readCmdline } from '../../proc/cmdline';
import { readMaps } from '../../proc/maps';
import { swappedShmemRuns } from '../../shmem-swap';
import { walk } from '../../walk';
import { explain } from '../errors';
import { parseUserPid } from '../options';
import { checkOutputFile, writeOutputFile } from '../output';
import { addEntries, addPages, iec, movePages, newBand, PageState, type PictureBand, pictureSvg } from '../render';

async function pictureCommand(pidText: string, o: { output?: string }): Promise<void> {
  const pid = parseUserPid(pidText);
  checkOutputFile(o.output);
  const bands: PictureBand[] = [];
  let handle: PagemapHandle | undefined;
  let command = '';
  try {
    command = readCmdline(pid);
    let current = -1;
    for await (const c of walk(pid)) {
      // walk() skips nothing but mappings with no chunk at all ([vsyscall]); keep their bands too.
      while (bands.length <= c.mappingIndex) bands.push(undefined as unknown as PictureBand);
      if (c.mappingIndex !== current) {
        current = c.mappingIndex;
        bands[current] = newBand(c.mapping.start, c.mapping.end, c.mapping.perms, c.mapping.path);
      }
      const band = bands[current];
      const first = Number((c.address - c.mapping.start) >> PAGE_SHIFT);
      if (c.entries) addEntries(band, first, c.entries);
      else addPages(band, first, c.pages, PageState.None);
      // Swapped-out shmem has no swap entry in the page table: cachestat finds it.
      const runs = swappedShmemRuns(pid, c);
      for (let r = 0; r < runs.length; r += 2)
        movePages(band, first + runs[r], runs[r + 1], PageState.None, PageState.Swapped);
    }
    // Zero-page mappings read as present and not exclusive: move them out of "shared".
    handle = openPagemap(pid);
    // parseMapsLine keeps paths with runs of spaces whole.
    readMaps(pid).forEach((m, i) => {
      const { start: s, end: e } = m;
      if (!bands[i] || bands[i].start !== s) bands[i] = newBand(s, e, m.perms, m.path);
      if (s >= KERNEL_HALF) return;
      const r = (handle as PagemapHandle).scan(s, e, { require: ScanCategory.PFNZERO, report: ScanCategory.PFNZERO });
      for (const reg of r.regions) {
        movePages(
          bands[i],
          Number((reg.start - s) >> PAGE_SHIFT),
          Number((reg.end - reg.start) >> PAGE_SHIFT),
          PageState.Shared,
          PageState.Zero,
        );
      }
    });
  } catch (err) {
    throw explain(err, pid);
  } finally {
    handle?.close();
  }
  const present = bands.filter(Boolean);
  let rss = 0;
  let vss = 0;
  for (const b of present) {
    vss += b.pages * PAGE;
    for (let k = 0; k < b.buckets; k++) rss += (b.counts[k * 5] + b.counts[k * 5 + 1]) * PAGE;
  }
  const svg = pictureSvg({
    title: `pid ${pid}: ${command.slice(0, 80)} (VSS ${iec(vss)}, resident ${iec(rss)})`,
    bands: present,
  });
  if (o.output) writeOutputFile(o.output, svg);
  else process.stdout.write(svg);
}

/** Adds `pagewalk picture` to the program. */
export function registerPicture(program: Command): void {
  program
    .command('picture')
    .description('the address space of a process as an SVG picture, pages coloured by state')
    .argument('<pid>', 'process id')
    .option('-o, --output <file>', 'write the SVG to FILE (default: stdout)')
    .action(pictureCommand);
}
