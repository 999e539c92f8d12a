import type { CommandModule } from 'yargs';
import { CliError, EXIT } from '../output.js';

/** Said when a command needs the server's code and this build does not have it (the single-file client). */
export function needsServerPackage(what: string): CliError {
  return new CliError(`${what} needs the server package: install it with npm install -g hush-vault (this hush is the client-only build)`, EXIT.usage, 'server_package_required');
}

/**
 * The server commands as `hush --help` lists them. The full CLI replaces
 * them with the real modules whenever a command line names one, so these
 * handlers run only in the single-file client.
 */
export function serverCommandStubs(): CommandModule[] {
  const stub = (command: string, describe: string): CommandModule => ({
    command, describe,
    builder: (y) => y.strict(false),
    handler: () => { throw needsServerPackage(`hush ${command.split(' ')[0]}`); },
  });
  return [
    stub('server', 'Run the Hush server (initialises an empty data dir on first start)'),
    stub('operator', 'Create a vault (operator init) and other operator tasks'),
  ];
}
