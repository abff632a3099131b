// Output plumbing: stdout that respects the pipe, warnings on stderr, the terminal's width.

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
