// Output plumbing: stdout that respects the pipe, files given with -o, warnings on stderr, the terminal's width.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cannotWrite } from './errors';

/** Writes to stdout, waiting for the pipe to drain so large outputs stay bounded. */
export class Output {
  #buffer = '';
  async write(s: string): Promise<void> {
    this.#buffer += s;
    if (this.#buffer.length > 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    const s = this.#buffer;
    this.#buffer = '';
    if (s && !process.stdout.write(s)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}

export function warn(message: string): void {
  process.stderr.write(`pagewalk: warning: ${message}\n`);
}

export function terminalWidth(): number {
  // Under script(1) or a fresh pty the size may read as 0.
  return process.stdout.columns || Number(process.env.COLUMNS) || 80;
}

/**
 * Checks before the work that `-o FILE` can be written, so a long measurement
 * does not end in a write error: a directory, or a file or directory this user
 * may not write, is refused up front.
 */
export function checkOutputFile(file: string | undefined): void {
  if (file === undefined) return;
  try {
    if (fs.existsSync(file)) {
      if (fs.statSync(file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      fs.accessSync(file, fs.constants.W_OK);
    } else fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
  } catch (err) {
    throw cannotWrite(file, err);
  }
}

/** Writes `-o FILE`; a file that cannot be written is named with its reason, never taken for a process. */
export function writeOutputFile(file: string, text: string): void {
  try {
    fs.writeFileSync(file, text);
  } catch (err) {
    throw cannotWrite(file, err);
  }
}
