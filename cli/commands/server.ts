import type { Argv, CommandModule } from 'yargs';
import { describeSettings, loadConfig } from '../../vault/config.js';
import { CliError, EXIT } from '../output.js';

/** Flags shared by `server` and `init`: every row of the config table. */
export function serverOptions<T>(y: Argv<T>): Argv<T> {
  for (const s of describeSettings()) {
    const name = s.flag.slice(2);
    const isBool = name === 'insecure-http';
    const isList = name === 'backup-recipient' || name === 'trust-proxy';
    y.option(name, { describe: `${s.doc} [env ${s.env}]`, type: isBool ? 'boolean' : isList ? 'array' : 'string', group: 'Server settings:' });
  }
  return y;
}

export const serverCommand: CommandModule = {
  command: 'server',
  describe: 'Run the Hush server (initialises an empty data dir on first start)',
  builder: (y) => serverOptions(y),
  handler: async (argv) => {
    // Everything the server creates (database, WAL, backups, audit file) is private to its user.
    process.umask(0o077);
    const cfg = loadConfig(argv as Record<string, unknown>);
    const { buildServer } = await import('../../vault/server.js');
    const server = await buildServer(cfg);
    if (server.init) {
      process.stderr.write(
        `\nHush initialised a new vault in ${cfg.databaseUrl ? 'the configured database' : cfg.dataDir}.\n` +
        `Root token (shown once, store it now):\n\n  ${server.init.rootToken}\n\n`,
      );
    }
    if (server.masterKeySource === 'data-dir' || server.init?.masterKeySource === 'generated') {
      process.stderr.write(
        'WARNING: the master key is stored beside the database (master.key in the data dir).\n' +
        '         This is for development only: anyone with a copy of the data dir can read every secret.\n' +
        '         For production set HUSH_MASTER_KEY_FILE to a key kept elsewhere; see docs/keys.md.\n',
      );
    }
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      server.app.log.info({ signal: sig }, 'shutting down: finishing in-flight requests');
      server.close().then(() => process.exit(0), (e) => { process.stderr.write(`hush: error during shutdown: ${(e as Error).message}\n`); process.exit(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const address = await server.listen();
    process.stderr.write(`hush server listening on ${address} (storage: ${server.container.storage})\n`);
    // The server runs until a signal arrives.
    await new Promise(() => undefined);
  },
};

const operatorInitCommand: CommandModule = {
  command: 'init',
  describe: 'Create a vault: the data dir, database and (unless a master key is supplied) master.key; print a root token once',
  builder: (y) => serverOptions(y).option('json', { type: 'boolean', describe: 'machine output' }),
  handler: async (argv) => {
    process.umask(0o077);
    const cfg = loadConfig(argv as Record<string, unknown>);
    const { initVault, openConfiguredDb } = await import('../../vault/vault.js');
    const { createLogger } = await import('../../vault/server.js');
    const opened = openConfiguredDb(cfg);
    try {
      const r = await initVault(cfg, opened, createLogger('silent'));
      if (argv.json) {
        process.stdout.write(JSON.stringify({ rootToken: r.rootToken, rootTokenId: r.rootTokenId, masterKeyFile: r.masterKeyFile, vaultId: r.vaultId }) + '\n');
      } else {
        process.stdout.write(`Initialised vault ${r.vaultId}.\nRoot token (shown once, store it now):\n\n  ${r.rootToken}\n\n`);
        if (r.masterKeySource === 'generated') process.stdout.write(`Master key written to ${r.masterKeyFile} (mode 0600). Development only: move it off this disk for production (docs/keys.md).\n`);
      }
    } catch (e) {
      throw CliError.from(e, EXIT.usage);
    } finally {
      await opened.db.destroy();
    }
  },
};

export const operatorCommand: CommandModule = {
  command: 'operator',
  describe: 'Create a vault (operator init) and other operator tasks',
  builder: (y) => y
    .command(operatorInitCommand)
    .demandCommand(1, 'name an operator command: init'),
  handler: () => undefined,
};
