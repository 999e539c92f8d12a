#!/usr/bin/env node
// The full `hush` of the hush-vault package: every client command, and the
// server commands (server, operator), whose modules load only when named.
import { fail, runCli } from './app.js';

runCli(process.argv.slice(2), {
  flavour: 'full',
  serverCommands: async (args) => {
    // `hush --help` lists them without loading the server (and its config
    // table); a command line that names one loads the real modules. A false
    // hit (`hush projects create server`) only costs that load.
    if (args.includes('server') || args.includes('operator')) {
      const { serverCommand, operatorCommand } = await import('./commands/server.js');
      return [serverCommand, operatorCommand];
    }
    const { serverCommandStubs } = await import('./commands/server-stubs.js');
    return serverCommandStubs();
  },
}).catch(fail);
