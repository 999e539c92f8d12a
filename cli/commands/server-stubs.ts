import type { CommandModule } from 'yargs';
import { CliError, EXIT } from '../output.js';
import { operatorClientCommands } from './operator.js';

/** Said when a command needs the server's code and this build does not have it (the single-file client). */
export function needsServerPackage(what: string): CliError {
  return new CliError(
    `${what} needs the server package: install it with npm install -g hush-vault (this hush is the client-only build)`,
    EXIT.usage,
    'server_package_required',
  );
}

/**
 * The server commands as `hush --help` lists them. The full CLI replaces
 * them with the real modules whenever a command line names one, so these
 * handlers run only in the single-file client.
 */
export function serverCommandStubs(): CommandModule[] {
  const stub = (command: string, describe: string): CommandModule => ({
    command,
    describe,
    builder: (y) => y.strict(false),
    handler: () => {
      throw needsServerPackage(command === 'server' ? 'hush server' : `hush operator ${command}`);
    },
  });
  // The operator commands that talk to a server (unseal, seal, seal-status) are client commands and work here.
  const operator: CommandModule = {
    command: 'operator',
    describe: 'Operator tasks: init, unseal, seal, seal-status, rekey',
    builder: (y) => {
      let out = y
        .command(stub('init', 'Create a vault (needs the server package)'))
        .command(stub('rekey', 'New unseal shares or passphrase (needs the server package)'));
      for (const c of operatorClientCommands) out = out.command(c);
      return out.demandCommand(1, 'name an operator command: init, unseal, seal, seal-status, rekey');
    },
    handler: () => undefined,
  };
  return [stub('server', 'Run the Hush server (initialises an empty data dir on first start)'), operator];
}
