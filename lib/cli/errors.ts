// Errors the user can act on, their exit codes, and the explanations of
// errors from lib/.

/** An error the user can act on: printed as one line, exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
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
    const what = e.path ?? (pid !== undefined ? `/proc/${pid}` : 'this');
    return new CliError(`permission denied reading ${what}: ${PRIVILEGE}`, EXIT_RUNTIME);
  }
  return new CliError(e.message ?? String(err), EXIT_RUNTIME);
}
