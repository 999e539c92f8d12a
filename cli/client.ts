// Entry of the single-file client (dist/client/hush.cjs, and dist/bin/hush):
// the client commands only. The server commands are named, so `hush server`
// says where to find them instead of "unknown command".
import { fail, runCli } from './app.js';

runCli(process.argv.slice(2), {
  flavour: 'client',
  serverCommands: async () => (await import('./commands/server-stubs.js')).serverCommandStubs(),
}).catch(fail);
