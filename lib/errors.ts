// Argument validation shared by every entry point: bad input is a TypeError
// or RangeError thrown here, before anything reaches the addon.
import { PAGE, PAGE_SHIFT } from './page';

/** Highest page number a pagemap offset can name (addresses below 2^64). */
const MAX_PAGE = 2 ** 52;
/** pid_max can be at most 2^22 (PID_MAX_LIMIT). */
const MAX_PID = 4_194_304;

export function validatePid(pid: unknown, name = 'pid'): number {
  if (typeof pid !== 'number') {
    throw new TypeError(`${name} must be a number, got ${describe(pid)}`);
  }
  if (!Number.isInteger(pid)) throw new RangeError(`${name} must be an integer, got ${pid}`);
  if (pid < 1 || pid > MAX_PID) throw new RangeError(`${name} must be between 1 and ${MAX_PID}, got ${pid}`);
  return pid;
}

/** A page-aligned virtual address as a page number (exact below 2^64). */
export function addressToPage(address: unknown, name = 'address'): number {
  let big: bigint;
  if (typeof address === 'bigint') {
    big = address;
  } else if (typeof address === 'number') {
    if (!Number.isSafeInteger(address)) {
      throw new RangeError(`${name} must be a safe integer or a bigint, got ${address}`);
    }
    big = BigInt(address);
  } else {
    throw new TypeError(`${name} must be a bigint or a number, got ${describe(address)}`);
  }
  if (big < 0n) throw new RangeError(`${name} must not be negative`);
  if (big >= 1n << 64n) throw new RangeError(`${name} is beyond the 64-bit address space`);
  if (big & (BigInt(PAGE) - 1n)) throw new RangeError(`${name} 0x${big.toString(16)} is not page-aligned (${PAGE})`);
  return Number(big >> PAGE_SHIFT);
}

export function validatePageCount(count: unknown, name = 'pageCount', max = MAX_PAGE): number {
  if (typeof count !== 'number') throw new TypeError(`${name} must be a number, got ${describe(count)}`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`${name} must be a non-negative integer`);
  if (count > max) throw new RangeError(`${name} ${count} is larger than ${max}`);
  return count;
}

/** Checks a caller-provided output buffer: a real, attached BigUint64Array. */
export function validateEntryBuffer(out: unknown, needed: number, name = 'out'): BigUint64Array {
  if (!(out instanceof BigUint64Array)) {
    throw new TypeError(`${name} must be a BigUint64Array, got ${describe(out)}`);
  }
  if (out.buffer instanceof SharedArrayBuffer) {
    throw new TypeError(`${name} must not be backed by a SharedArrayBuffer`);
  }
  // A detached buffer reports length 0; say so rather than "too small".
  if (out.byteLength === 0 && needed > 0 && (out.buffer as ArrayBuffer).byteLength === 0) {
    throw new TypeError(`${name} is detached or empty`);
  }
  if (out.length < needed) {
    throw new RangeError(`${name} holds ${out.length} entries, ${needed} needed`);
  }
  return out;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** A Node-style system error for conditions found in JavaScript. */
export function systemError(
  code: string,
  errno: number,
  syscall: string,
  path: string,
  reason: string,
): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${reason}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  err.path = path;
  return err;
}

/**
 * Node's fs attaches `path` to errors of open() but not always of read():
 * a process that exits between the two gives an ESRCH without it. Fills it in.
 */
export function withPath<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw addPath(err, path);
  }
}

function addPath(err: unknown, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string' && e.path === undefined) {
    e.path = path;
    if (typeof e.message === 'string' && !e.message.includes(path)) e.message += ` '${path}'`;
  }
  return err;
}
