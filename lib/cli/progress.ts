// The progress bar of long scans.

/** A progress bar on stderr, shown only for scans that last and only on a terminal. */
export function progress(): { onProgress: (done: number, total: number, what?: string) => void; end: () => void } {
  const began = performance.now();
  let shown = false;
  let drawn = -1;
  const tty = process.stderr.isTTY === true;
  return {
    onProgress(done, total, what = 'processes') {
      if (!tty || performance.now() - began < 300) return;
      const width = 30;
      // Redraw only when the bar moves: thousands of processes, thirty steps.
      const step = total ? Math.floor((done / total) * width) : width;
      if (step === drawn && done !== total) return;
      drawn = step;
      process.stderr.write(`\r[${'#'.repeat(step)}${' '.repeat(width - step)}] ${done}/${total} ${what}\x1b[K`);
      shown = true;
    },
    end() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}
