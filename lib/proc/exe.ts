// /proc/PID/exe: a symbolic link to the program the process runs.
import * as fs from 'node:fs';
import { withPath } from '../errors';
import { type ProcTarget, procPath } from './read';

/** The link as the kernel gives it: " (deleted)" ends it when the file was replaced or removed. */
export function readExe(pid: ProcTarget): string {
  const path = procPath(pid, 'exe');
  return withPath(path, () => fs.readlinkSync(path));
}
