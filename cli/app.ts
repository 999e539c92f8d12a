/**
 * The `hush` command, shared by both builds:
 * - cli/main.ts, the full CLI of the `hush-vault` package (client + server);
 * - cli/client.ts, the single-file client (dist/client/hush.cjs and the
 *   dist/bin/hush executable), which has the client commands only.
 *
 * Startup cost matters (`hush run` is a container entrypoint): this file and
 * the command modules import only yargs and small local helpers. The SDK
 * loads inside the handlers that need it; the server only inside the server
 * commands, which main.ts loads when one of them is named.
 */
import type { CommandModule } from 'yargs';
import { CliError, EXIT, errorLine } from './output.js';

import { VERSION } from '../common/version.js';

export function fail(e: unknown): never {
  const err = CliError.from(e);
  process.stderr.write(errorLine(err.message));
  process.exit(err.exitCode);
}

export interface CliBuild {
  /** The commands that need the server's code: loaded by main.ts, named by the client only to point elsewhere. */
  serverCommands: (args: string[]) => Promise<CommandModule[]>;
  /** One word for --version output and messages. */
  flavour: 'full' | 'client';
}

export async function runCli(args: string[], build: CliBuild): Promise<void> {
  // `hush run` is a container entrypoint: parse ordinary invocations without
  // loading yargs or the other commands (cli/run/fast.ts); anything unusual
  // (help, typos, odd flag forms) falls through to yargs below.
  if (args[0] === 'run') {
    const { fastRun } = await import('./run/fast.js');
    if (await fastRun(args.slice(1))) await new Promise(() => undefined);
  }
  // A reader that closed the pipe (`hush audit list | head -1`) is not an
  // error: further output is dropped and the command finishes as it would.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') fail(e);
  });

  // Top-level only: `hush secrets get K --version 3` has its own --version.
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    process.stdout.write(`${VERSION}${build.flavour === 'client' ? ' (client)' : ''}\n`);
    process.exit(0);
  }

  const [
    { default: yargs },
    { auditCommand },
    { authCommand },
    { backupCommand },
    { envsCommand },
    { keysCommand },
    login,
    { projectsCommand },
    { runCommand },
    { secretsCommand },
    { setupCommand, initPointer },
    { tokensCommand },
    { webhooksCommand },
    { globalOptions },
    serverCommands,
  ] = await Promise.all([
    import('yargs'),
    import('./commands/audit.js'),
    import('./commands/auth.js'),
    import('./commands/backup.js'),
    import('./commands/envs.js'),
    import('./commands/keys.js'),
    import('./commands/login.js'),
    import('./commands/projects.js'),
    import('./commands/run.js'),
    import('./commands/secrets.js'),
    import('./commands/setup.js'),
    import('./commands/tokens.js'),
    import('./commands/webhooks.js'),
    import('./context.js'),
    build.serverCommands(args),
  ]);
  const { loginCommand, logoutCommand, profilesCommand, whoamiCommand } = login;

  let cli = globalOptions(yargs(args))
    .scriptName('hush')
    .usage('hush <command> [options]\n\nSelf-hosted secrets vault. Docs: docs/cli.md')
    .command(runCommand)
    .command(setupCommand)
    .command(loginCommand)
    .command(logoutCommand)
    .command(profilesCommand)
    .command(whoamiCommand)
    .command(projectsCommand)
    .command(envsCommand)
    .command(secretsCommand)
    .command(tokensCommand)
    .command(authCommand)
    .command(webhooksCommand)
    .command(auditCommand)
    .command(keysCommand)
    .command(backupCommand);
  for (const c of serverCommands) cli = cli.command(c);
  cli = cli.command(initPointer);
  await cli
    .demandCommand(1, 'name a command; see hush --help')
    .strict()
    .recommendCommands()
    // yargs writes a one-letter alias with two dashes when the word typed so far starts with "--" (--p, --e):
    // a flag that does not exist. One letter takes one dash.
    .completion('completion', 'Print a bash/zsh completion script (hush completion >> ~/.bashrc)', ((
      _current: string,
      _argv: unknown,
      defaults: (cb?: (err: Error | null, list: string[] | undefined) => void) => unknown,
      done: (list: string[]) => unknown,
    ) => {
      defaults((_err, list) => done([...new Set((list ?? []).map((c) => c.replace(/^--([A-Za-z])(?=$|:)/, '-$1')))]));
    }) as never)
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilogue('Exit codes: 0 ok, 1 error, 2 usage, 3 audit chain broken, 4 auth, 5 not found, 6 conflict, 7 server unavailable.')
    .fail((msg, err) => {
      if (err) fail(err);
      // Errors are one line: yargs words some (e.g. "Invalid values:\n  Argument: ...") over several.
      const flat = String(msg)
        .replace(/\s*\n\s*/g, ' ')
        .trim();
      const line = /^Did you mean/.test(flat) ? `unknown command; ${flat.charAt(0).toLowerCase()}${flat.slice(1)}` : flat;
      process.stderr.write(errorLine(`${line} (see --help)`));
      process.exit(EXIT.usage);
    })
    .parseAsync()
    .catch(fail);
}
