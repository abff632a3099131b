// Bad input gives a clear error and never a crash: TypeError or RangeError
// from TypeScript for arguments, Node-style system errors (code, errno,
// syscall, path) for what the kernel answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countStates,
  decodeEntry,
  extractPfns,
  listPids,
  openPagemap,
  processInfo,
  processMemory,
  readMaps,
  readSmapsRollup,
  runLengths,
  snapshot,
  walk,
  walkSync,
} from '../lib/index';
import { waitFor } from './helpers/fixture';
import { kernel } from './helpers/kernel';
import { freePid, kernelThreadPid, killAllProcs, type Proc, startChurn } from './helpers/procs';

let idle: Proc;
let anon: bigint;
beforeAll(async () => {
  idle = await startChurn(['idle']);
  anon = BigInt(idle.line.split(' ')[2]);
});
afterAll(killAllProcs);

const badPids: [unknown, ErrorConstructor][] = [
  [0, RangeError],
  [-1, RangeError],
  [1.5, RangeError],
  [2 ** 22 + 1, RangeError],
  [Number.MAX_SAFE_INTEGER, RangeError],
  [Infinity, RangeError],
  [Number.NaN, RangeError],
  ['1', TypeError],
  [1n, TypeError],
  [null, TypeError],
  [undefined, TypeError],
  [{ valueOf: () => 1 }, TypeError],
];

describe('pids', () => {
  it.each(badPids)('pid %s is refused before any system call', async (pid, kind) => {
    expect(() => openPagemap(pid as number)).toThrow(kind);
    expect(() => readMaps(pid as number)).toThrow(kind);
    expect(() => processInfo(pid as number)).toThrow(kind);
    expect(() => walkSync(pid as number).next()).toThrow(kind);
    await expect(processMemory(pid as number)).rejects.toThrow(kind);
    await expect(snapshot({ pids: [pid as number] })).rejects.toThrow(kind);
    await expect(walk(pid as number).next()).rejects.toThrow(kind);
  });

  it('a pid with no process: ENOENT with code, errno, syscall and path', async () => {
    const pid = freePid();
    const fields = { code: 'ENOENT', errno: -2, syscall: 'open', path: `/proc/${pid}/pagemap` };
    expect(() => openPagemap(pid)).toThrow(expect.objectContaining(fields));
    await expect(processMemory(pid)).rejects.toMatchObject({
      code: 'ENOENT',
      errno: -2,
      path: expect.stringContaining(`/proc/${pid}/`),
    });
    expect(() => readMaps(pid)).toThrow(expect.objectContaining({ code: 'ENOENT', path: `/proc/${pid}/maps` }));
    const s = await snapshot({ pids: [pid] });
    expect(s.gone).toEqual([expect.objectContaining({ pid, reason: 'exited' })]);
  });

  it('a kernel thread: zeros from processMemory and snapshot; openPagemap says ESRCH', async () => {
    const k = kernelThreadPid();
    const r = await processMemory(k);
    expect([r.vss, r.rss, r.pss, r.uss, r.swap, r.partial]).toEqual([0, 0, 0, 0, 0, false]);
    expect(() => openPagemap(k)).toThrow(
      expect.objectContaining({ code: 'ESRCH', errno: -3, syscall: 'open', path: `/proc/${k}/pagemap` }),
    );
    const s = await snapshot({ pids: [k] });
    expect(s.processes).toEqual([expect.objectContaining({ pid: k, rss: 0, pss: 0 })]);
    expect(s.processes[0].info.kernelThread).toBe(true);
    // No mm: the kernel refuses smaps_rollup with ESRCH.
    expect(() => readSmapsRollup(k)).toThrow(
      expect.objectContaining({ code: 'ESRCH', path: `/proc/${k}/smaps_rollup` }),
    );
  });

  it('a zombie: zeros from processMemory and snapshot; openPagemap says ESRCH', async () => {
    const parent = await startChurn(['zombie']);
    const z = Number(parent.line);
    expect(processInfo(z).ppid).toBe(parent.pid);
    const r = await processMemory(z);
    expect([r.vss, r.rss, r.pss, r.swap]).toEqual([0, 0, 0, 0]);
    expect(() => openPagemap(z)).toThrow(expect.objectContaining({ code: 'ESRCH', path: `/proc/${z}/pagemap` }));
    const s = await snapshot({ pids: [z, parent.pid] });
    expect(s.processes.map((p) => [p.pid, p.pid === z ? p.rss : 1])).toEqual(
      [
        [parent.pid, 1],
        [z, 0],
      ].sort((a, b) => a[0] - b[0]),
    );
    expect(s.gone).toEqual([]);
    await parent.kill();
    // Reparented and reaped by init once its parent is gone.
    expect(await waitFor(() => !listPids().includes(z), 5000)).toBe(true);
  });
});

describe('addresses and page counts', () => {
  const cases: [string, unknown, unknown, ErrorConstructor][] = [
    ['unaligned', 4097, 1, RangeError],
    ['unaligned bigint', 0x1001n, 1, RangeError],
    ['negative', -4096, 1, RangeError],
    ['negative bigint', -4096n, 1, RangeError],
    ['2^64', 1n << 64n, 1, RangeError],
    ['unsafe number', 2 ** 60, 1, RangeError],
    ['a string', '4096', 1, TypeError],
    ['NaN', Number.NaN, 1, RangeError],
    ['range overflowing 2^64', (1n << 64n) - 4096n, 2, RangeError],
    ['count 2^40', 0, 2 ** 40, RangeError],
    ['negative count', 0, -1, RangeError],
    ['fractional count', 0, 1.5, RangeError],
    ['string count', 0, '1', TypeError],
  ];
  it.each(cases)('%s', async (_name, address, count, kind) => {
    const h = openPagemap(idle.pid);
    try {
      expect(() => h.read(address as bigint, count as number)).toThrow(kind);
      await expect(h.readAsync(address as bigint, count as number)).rejects.toThrow(kind);
    } finally {
      h.close();
    }
  });

  it('a count of 0 reads nothing; the last page below 2^64 and pages past user space throw a RangeError naming its end', async () => {
    const h = openPagemap(idle.pid);
    expect(h.read(anon, 0).length).toBe(0);
    expect((await h.readAsync(anon, 0)).length).toBe(0);
    // x86-64 with 4-level page tables: user space ends one page below 2^47 (TASK_SIZE_MAX).
    const end = /end of user space \(0x7ffffffff000\)/;
    expect(() => h.read((1n << 64n) - 4096n, 1)).toThrow(end);
    expect(() => h.read(1n << 47n, 4)).toThrow(RangeError);
    expect(() => h.read(0xffffffffff600000n, 1)).toThrow(end); // [vsyscall]
    expect(() => h.read(1n << 60n, 1)).toThrow(end);
    await expect(h.readAsync(1n << 62n, 8)).rejects.toThrow(end);
    await expect(h.readAsync(1n << 62n, 8)).rejects.toBeInstanceOf(RangeError);
    // A read that starts below the end and runs past it: refused whole, not cut short.
    expect(() => h.read((1n << 47n) - 8192n, 2)).toThrow(end);
    expect(h.read((1n << 47n) - 8192n, 1).length).toBe(1);
    h.close();
  });

  it('scan(): start after end, unaligned or out-of-range bounds, bad masks are refused', () => {
    const h = openPagemap(idle.pid);
    expect(() => h.scan(8192, 4096)).toThrow(RangeError);
    expect(() => h.scan(1, 4096)).toThrow(RangeError);
    expect(() => h.scan(0, 1n << 64n)).toThrow(RangeError);
    expect(() => h.scan(0, 4096, { require: 1 << 12 })).toThrow(RangeError);
    expect(() => h.scan(0, 4096, { batch: 0 })).toThrow(RangeError);
    expect(() => h.scan(0, 4096, { maxPages: -1 })).toThrow(RangeError);
    // An empty range is empty.
    expect(h.scan(anon, anon).regions).toEqual([]);
    // Beyond the user address space the kernel answers EFAULT: a system
    // error (without PAGEMAP_SCAN: unsupported, as for any range).
    const beyond = () => h.scan(0, (1n << 64n) - 4096n);
    if (kernel().pagemapScan)
      expect(beyond).toThrow(
        expect.objectContaining({ code: 'EFAULT', syscall: 'ioctl', path: `/proc/${idle.pid}/pagemap` }),
      );
    else expect(beyond().supported).toBe(false);
    h.close();
  });

  it('the decoders refuse bad slices, masks and entries', () => {
    const e = new BigUint64Array(8);
    expect(() => countStates(e, 4, 2)).toThrow(RangeError);
    expect(() => countStates(e, 0, 9)).toThrow(RangeError);
    expect(() => countStates(e, -1)).toThrow(RangeError);
    expect(() => countStates(e, 0.5)).toThrow(RangeError);
    expect(() => countStates([1n, 2n] as unknown as BigUint64Array)).toThrow(TypeError);
    expect(() => countStates(new Float64Array(8) as unknown as BigUint64Array)).toThrow(TypeError);
    expect(() => runLengths(e, -1n)).toThrow(RangeError);
    expect(() => runLengths(e, 1n << 64n)).toThrow(RangeError);
    expect(() => runLengths(e, 1 as unknown as bigint)).toThrow(TypeError);
    expect(() => extractPfns(e, new BigInt64Array(8) as unknown as BigUint64Array)).toThrow(TypeError);
    expect(() => decodeEntry(-1n)).toThrow(RangeError);
    expect(() => decodeEntry(1n << 64n)).toThrow(RangeError);
    expect(() => decodeEntry(1 as unknown as bigint)).toThrow(TypeError);
  });

  it('options of the wrong shape are refused', async () => {
    await expect(processMemory(idle.pid, null as never)).rejects.toThrow(TypeError);
    await expect(processMemory(idle.pid, { unprivileged: 'yes' as never })).rejects.toThrow(RangeError);
    await expect(snapshot({ pids: 'all' as never })).rejects.toThrow(TypeError);
    await expect(snapshot({ concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(snapshot({ concurrency: 1.5 })).rejects.toThrow(RangeError);
    await expect(snapshot({ groups: [{ name: 'x', match: 3 as never }] })).rejects.toThrow(TypeError);
    await expect(snapshot({ filter: 'x' as never })).rejects.toThrow(TypeError);
    for (const [lockPauses, error] of [
      [null, TypeError],
      [true, TypeError],
      [100, TypeError],
      [[100, 50], TypeError],
      [{ holdMicros: '100' }, TypeError],
      [{ pauseMicros: 50n }, TypeError],
      [{ holdMicros: 0 }, RangeError],
      [{ holdMicros: -1 }, RangeError],
      [{ holdMicros: 1.5 }, RangeError],
      [{ holdMicros: 1_000_001 }, RangeError],
      [{ pauseMicros: Number.NaN }, RangeError],
      [{ pauseMicros: 100_001 }, RangeError],
    ] as const) {
      await expect(processMemory(idle.pid, { lockPauses: lockPauses as never })).rejects.toThrow(error);
      await expect(snapshot({ pids: [idle.pid], lockPauses: lockPauses as never })).rejects.toThrow(error);
    }
    expect(() => walkSync(idle.pid, { chunkPages: 0 }).next()).toThrow(RangeError);
    expect(() => walkSync(idle.pid, { chunkPages: 2 ** 40 }).next()).toThrow(RangeError);
    expect(() => walkSync(idle.pid, { filter: 1 as never }).next()).toThrow(TypeError);
  });
});

describe('output buffers', () => {
  it('too small: RangeError', async () => {
    const h = openPagemap(idle.pid);
    expect(() => h.read(anon, 16, new BigUint64Array(8))).toThrow(RangeError);
    await expect(h.readAsync(anon, 16, new BigUint64Array(8))).rejects.toThrow(RangeError);
    h.close();
  });

  it('of the wrong type: TypeError', () => {
    const h = openPagemap(idle.pid);
    for (const bad of [new BigInt64Array(16), new Float64Array(16), new Uint8Array(128), Buffer.alloc(128), [0n], {}]) {
      expect(() => h.read(anon, 16, bad as unknown as BigUint64Array)).toThrow(TypeError);
    }
    h.close();
  });

  it('detached: TypeError', async () => {
    const h = openPagemap(idle.pid);
    const out = new BigUint64Array(16);
    structuredClone(out.buffer, { transfer: [out.buffer] });
    expect(() => h.read(anon, 16, out)).toThrow(TypeError);
    await expect(h.readAsync(anon, 16, out)).rejects.toThrow(TypeError);
    h.close();
  });

  it('backed by a SharedArrayBuffer: TypeError for output, accepted as decoder input', () => {
    const h = openPagemap(idle.pid);
    const shared = new BigUint64Array(new SharedArrayBuffer(16 * 8));
    expect(() => h.read(anon, 16, shared)).toThrow(TypeError);
    expect(() => extractPfns(new BigUint64Array(4), shared)).toThrow(TypeError);
    expect(countStates(shared).pages).toBe(16);
    h.close();
  });

  it('resizable ArrayBuffers are accepted: reads write within the current length only', async () => {
    const h = openPagemap(idle.pid);
    // ES2024 API, absent from the ES2022 lib this project compiles against.
    type Resizable = ArrayBuffer & { resize(n: number): void };
    const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable;
    const ab = new Ctor(64 * 8, { maxByteLength: 128 * 8 });
    const fixed = new BigUint64Array(ab, 0, 64);
    const tracking = new BigUint64Array(ab);
    expect(countStates(h.read(anon, 64, fixed)).present).toBe(64);
    expect(countStates(await h.readAsync(anon, 64, tracking)).present).toBe(64);
    // Shrunk below what the read needs: refused up front.
    ab.resize(8 * 8);
    expect(() => h.read(anon, 64, tracking)).toThrow(RangeError);
    expect(() => h.read(anon, 64, fixed)).toThrow(RangeError); // out of bounds now: length 0
    // Shrunk while the read is in flight: the promise rejects, nothing is written.
    ab.resize(64 * 8);
    const p = h.readAsync(anon, 64, tracking);
    ab.resize(0);
    await expect(p).rejects.toThrow(TypeError);
    ab.resize(128 * 8);
    expect(tracking.every((x) => x === 0n)).toBe(true); // grown back: zero-filled, untouched
    h.close();
  });

  it('detaching the buffer while readAsync is in flight neither crashes nor writes freed memory', async () => {
    const h = openPagemap(idle.pid);
    for (let i = 0; i < 200; i++) {
      const out = new BigUint64Array(4096);
      const p = h.readAsync(anon, 64, out);
      const moved = structuredClone(out.buffer, { transfer: [out.buffer] });
      await expect(p).rejects.toThrow(/detached or shrunk/);
      // The buffer's memory now belongs to `moved`: the read must not have landed there.
      expect(new BigUint64Array(moved).every((x) => x === 0n)).toBe(true);
    }
    h.close();
  });

  it('closing the handle while reads are in flight lets them finish, then refuses more', async () => {
    const h = openPagemap(idle.pid);
    const reads = Array.from({ length: 32 }, () => h.readAsync(anon, 64));
    h.close();
    expect(h.closed).toBe(true);
    for (const r of await Promise.all(reads)) expect(countStates(r).present).toBe(64);
    expect(() => h.read(anon, 1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await expect(h.readAsync(anon, 1)).rejects.toMatchObject({ code: 'EBADF' });
    h.close(); // twice is fine
  });
});
