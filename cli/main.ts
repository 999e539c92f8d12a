#!/usr/bin/env node
// Startup cost matters here (`hush run` is a container entrypoint): this file
// and the command modules import only yargs and small local helpers. The SDK,
// the server and their dependencies load inside the handlers that need them.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { auditCommand } from './commands/audit.js';
import { backupCommand } from './commands/backup.js';
import { envsCommand } from './commands/envs.js';
import { keysCommand } from './commands/keys.js';
import { loginCommand, logoutCommand, profilesCommand, whoamiCommand } from './commands/login.js';
import { projectsCommand } from './commands/projects.js';
import { runCommand } from './commands/run.js';
import { secretsCommand } from './commands/secrets.js';
import { initCommand, serverCommand } from './commands/server.js';
import { tokensCommand } from './commands/tokens.js';
import { globalOptions } from './context.js';
import { CliError, EXIT } from './output.js';

const VERSION = '0.1.0';

function fail(e: unknown): never {
  const err = CliError.from(e);
  process.stderr.write(`hush: ${err.message}\n`);
  process.exit(err.exitCode);
}

const args = hideBin(process.argv);
// Top-level only: `hush secrets get K --version 3` has its own --version.
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

const cli = globalOptions(yargs(args))
  .scriptName('hush')
  .usage('hush <command> [options]\n\nSelf-hosted secrets vault. Docs: docs/cli.md')
  .command(runCommand)
  .command(loginCommand)
  .command(logoutCommand)
  .command(profilesCommand)
  .command(whoamiCommand)
  .command(projectsCommand)
  .command(envsCommand)
  .command(secretsCommand)
  .command(tokensCommand)
  .command(auditCommand)
  .command(keysCommand)
  .command(backupCommand)
  .command(serverCommand)
  .command(initCommand)
  .demandCommand(1, 'name a command; see hush --help')
  .strict()
  .recommendCommands()
  .completion('completion', 'Print a bash/zsh completion script (hush completion >> ~/.bashrc)')
  .help()
  .alias('help', 'h')
  .version(false)
  .wrap(Math.min(120, process.stdout.columns || 100))
  .epilogue('Exit codes: 0 ok, 1 error, 2 usage, 3 audit chain broken, 4 auth, 5 not found, 6 conflict, 7 server unavailable.')
  .fail((msg, err) => {
    if (err) fail(err);
    const line = /^Did you mean/.test(msg) ? `unknown command; ${msg.charAt(0).toLowerCase()}${msg.slice(1)}` : msg;
    process.stderr.write(`hush: ${line} (see --help)\n`);
    process.exit(EXIT.usage);
  });

cli.parseAsync().catch(fail);
