// Errors the user can act on, their exit codes, and the explanations of
// errors from lib/. Every exit code is listed in docs/cli.md.
import { deniedCause } from './denied';

/** An error the user can act on: printed as one line, exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** Something failed while working: a file that cannot be written, a port in use, a refused read. */
export const EXIT_RUNTIME = 1;
/** The command line is wrong: an unknown command, option or value. Nothing else. */
export const EXIT_USAGE = 2;
/** The process (or the processes a filter asks for) does not exist. */
export const EXIT_NOT_FOUND = 3;

export const usage = (message: string) => new CliError(message, EXIT_USAGE);
export const PRIVILEGE = 'needs CAP_SYS_ADMIN (run as root)';

/** Turns errors from lib/ into the one-line message and exit code they deserve. */
export function explain(err: unknown, pid?: number): CliError {
  if (err instanceof CliError) return err;
  const e = err as NodeJS.ErrnoException;
  if ((e.code === 'ENOENT' || e.code === 'ESRCH') && pid !== undefined)
    return new CliError(`no such process: ${pid}`, EXIT_NOT_FOUND);
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    // Only a /proc file is a process the kernel refused: any other path is a file of the user's.
    const procPid = e.path === undefined ? pid : Number(/^\/proc\/(\d+)\//.exec(e.path)?.[1] ?? Number.NaN);
    if (procPid !== undefined && !Number.isNaN(procPid)) {
      const what = e.path ?? `/proc/${procPid}`;
      return new CliError(`permission denied reading ${what}: ${deniedCause(procPid)}`, EXIT_RUNTIME);
    }
    if (e.path !== undefined) return new CliError(`cannot access ${e.path}: ${e.code}`, EXIT_RUNTIME);
    return new CliError(`permission denied: ${PRIVILEGE}`, EXIT_RUNTIME);
  }
  return new CliError(e.message ?? String(err), EXIT_RUNTIME);
}

/** The error of a file the command was told to write (-o FILE): says which file and why. */
export function cannotWrite(file: string, err: unknown): CliError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EISDIR')
    return new CliError(`cannot write ${file}: it is a directory (give a file name)`, EXIT_RUNTIME);
  return new CliError(`cannot write ${file}: ${e.code ?? e.message}`, EXIT_RUNTIME);
}
