#!/usr/bin/env node
// The pagewalk command: smem's reports with kernel-exact figures, charts,
// per-mapping and per-library views, raw page states, group accounting and
// a picture of an address space.
//
// Each subcommand lives in commands/<name>.ts and exports one function that
// adds it to the program. A new command is a new file there and one entry in
// COMMANDS below; options shared by several commands go in errors.ts
// (argument checks), measure.ts (snapshots) and output.ts (writing).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { registerDiff } from './commands/diff';
import { registerGroup } from './commands/group';
import { registerLibs } from './commands/libs';
import { registerPages } from './commands/pages';
import { registerPicture } from './commands/picture';
import { registerRam } from './commands/ram';
import { registerRecord } from './commands/record';
import { registerServe } from './commands/serve';
import { registerShow } from './commands/show';
import { registerSmem } from './commands/smem';
import { registerTop } from './commands/top';
import { EXIT_USAGE, explain } from './errors';

/** The command run when none is named (`pagewalk -P sshd` is `pagewalk smem -P sshd`). */
const DEFAULT_COMMAND = 'smem';

/** In the order `pagewalk --help` lists them; smem is the default command. */
const COMMANDS: ((program: Command) => void)[] = [
  registerSmem,
  registerShow,
  registerLibs,
  registerPages,
  registerGroup,
  registerPicture,
  registerTop,
  registerRecord,
  registerDiff,
  registerRam,
  registerServe,
];

export function buildProgram(): Command {
  const program = new Command('pagewalk');
  // dist/cli/main.js and lib/cli/main.ts both sit two levels below package.json.
  const packageJson = path.join(__dirname, '..', '..', 'package.json');
  program
    .description('Exact Linux memory figures from /proc/PID/pagemap')
    .version(JSON.parse(fs.readFileSync(packageJson, 'utf8')).version)
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (str, write) => write(`pagewalk: ${str.replace(/^error: /, '')}`) });
  for (const register of COMMANDS) register(program);
  // smem is the default command, so commander hands it whatever is not a
  // command name: a mistyped command ("smme") would reach smem as an operand.
  // smem takes none, so a first operand there is an unknown command.
  program.hook('preSubcommand', (_program, sub) => {
    const first = program.args[0];
    if (sub.name() === DEFAULT_COMMAND && first !== undefined && first !== DEFAULT_COMMAND && !first.startsWith('-'))
      (program as Command & { unknownCommand(): never }).unknownCommand();
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // `pagewalk ... | head` closes the pipe early: not an error.
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version arrive as "errors" once exitOverride is on.
      if (err.exitCode === 0) return 0;
      return EXIT_USAGE;
    }
    const e = explain(err);
    process.stderr.write(`pagewalk: ${e.message}\n`);
    return e.code;
  }
}

// Imported (tests, ESM loaders) it only exports; run as a script it runs.
if (typeof require !== 'undefined' && require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
