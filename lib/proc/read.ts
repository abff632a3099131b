// Reading /proc files, kept apart from parsing them (each file's parser
// lives in its own module beside this one and takes the text).
import * as fs from 'node:fs';
import { validatePid, withPath } from '../errors';
import { native } from '../native';

/** `self` reads the calling process's own files. */
export type ProcTarget = number | 'self';

export function procPath(pid: ProcTarget, file: string): string {
  return `/proc/${pid === 'self' ? 'self' : validatePid(pid)}/${file}`;
}

/**
 * The text of /proc/PID/FILE. Errors carry the path. latin1 suits files whose
 * bytes must survive as they are (comm in stat); utf8 the rest.
 */
export function readProcFile(pid: ProcTarget, file: string, encoding: BufferEncoding = 'utf8'): string {
  const path = procPath(pid, file);
  return withPath(path, () => fs.readFileSync(path, encoding));
}

/**
 * The same off the event loop, in one job on the thread pool: a seq_file
 * (maps, smaps) gives about 4 KiB per read, and fs.promises.readFile made a
 * round trip through the pool for each (five for a small file: open, fstat,
 * two reads, close).
 */
export async function readProcFileAsync(
  pid: ProcTarget,
  file: string,
  encoding: BufferEncoding = 'utf8',
): Promise<string> {
  const path = procPath(pid, file);
  return (await native.readProcText(path)).toString(encoding);
}
