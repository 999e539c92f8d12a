#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initCommand, serverCommand } from './commands/server.js';
import { CliError, EXIT } from './output.js';

function fail(e: unknown): never {
  const err = CliError.from(e);
  process.stderr.write(`hush: ${err.message}\n`);
  process.exit(err.exitCode);
}

const cli = yargs(hideBin(process.argv))
  .scriptName('hush')
  .command(serverCommand)
  .command(initCommand)
  .demandCommand(1, 'name a command; see hush --help')
  .strict()
  .recommendCommands()
  .completion('completion', 'print a shell completion script')
  .help()
  .version('0.1.0')
  .fail((msg, err) => {
    if (err) fail(err);
    process.stderr.write(`hush: ${msg}\n`);
    process.exit(EXIT.usage);
  });

cli.parseAsync().catch(fail);
