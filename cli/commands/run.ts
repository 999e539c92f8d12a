import type { Argv, CommandModule } from 'yargs';

/** Parsed flags of `hush run` (see docs/run.md). */
export interface RunArgs {
  addr?: string;
  'token-file'?: string;
  role?: string;
  'jwt-file'?: string;
  'ca-file'?: string;
  profile?: string;
  project?: string;
  env?: string;
  timeout?: number;
  retries?: number;
  only?: string | string[];
  'preserve-env'?: string | string[];
  mask?: boolean;
  watch?: boolean;
  'watch-grace'?: string;
  fallback?: string;
  'fallback-max-age'?: string;
  mount?: string;
  'mount-format'?: string;
  'no-env'?: boolean;
  raw?: boolean;
  command?: string;
  /** Positionals given without `--` (refused with a hint). */
  args?: (string | number)[];
  /** Everything after `--`, verbatim. */
  '--'?: (string | number)[];
}

function runOptions(y: Argv): Argv<RunArgs> {
  // Scoped to this command: keep everything after `--` verbatim (no number
  // coercion: "007" stays "007"), and let --no-env be its own flag instead
  // of negating --env.
  return (
    y
      .parserConfiguration({ 'populate--': true, 'boolean-negation': false, 'parse-positional-numbers': false })
      .usage(
        'hush run [options] -- COMMAND [ARGS...]\n\nRun COMMAND with the secrets of a project environment ' +
          "in its environment. hush run exits with the command's exit status (128+N when signal N killed " +
          'it); see docs/run.md.',
      )
      // --addr, --token-file, --role, --jwt-file, --profile, -p/--project, -e/--env, --timeout and --retries are global options (cli/context.ts).
      .positional('args', { type: 'string', array: true, describe: 'The command and its arguments, after --' })
      .option('only', { type: 'string', describe: 'Inject only these names (comma-separated, repeatable)', group: 'Run options:' })
      .option('preserve-env', {
        type: 'string',
        describe: 'Inherited variables win over vault values: all of them (bare flag) or only --preserve-env=A,B',
        group: 'Run options:',
      })
      .option('mask', {
        type: 'boolean',
        describe: 'Pipe stdout/stderr and replace every secret value (4+ characters) with *****',
        group: 'Run options:',
      })
      .option('watch', { type: 'boolean', describe: "Restart the command when the environment's values change", group: 'Run options:' })
      .option('watch-grace', {
        type: 'string',
        default: '10s',
        describe: 'With --watch: time between SIGTERM and SIGKILL when restarting',
        group: 'Run options:',
      })
      .option('fallback', {
        type: 'string',
        describe: 'Encrypted last-known-good cache file, used when the server cannot be reached',
        group: 'Run options:',
      })
      .option('fallback-max-age', {
        type: 'string',
        default: '24h',
        describe: 'Oldest fallback cache that may be used',
        group: 'Run options:',
      })
      .option('mount', {
        type: 'string',
        describe: 'Also write the values to this file (mode 0600), removed when the command exits',
        group: 'Run options:',
      })
      .option('mount-format', {
        type: 'string',
        choices: ['dotenv', 'env', 'json', 'raw'],
        describe: 'Format of the --mount file [default: json for *.json, else dotenv (also: env); raw = one bare ' + 'value]',
        group: 'Run options:',
      })
      .option('no-env', { type: 'boolean', describe: 'With --mount: do not put the values into the environment', group: 'Run options:' })
      .option('raw', { type: 'boolean', describe: 'Inject values as stored: ${...} references not resolved', group: 'Run options:' })
      .option('command', {
        type: 'string',
        describe: 'Run this string with /bin/sh -c (words after -- become $1, $2, ...)',
        group: 'Run options:',
      })
      .example('hush run -p api -e prod -- node server.js', 'start a server with api/prod injected')
      .example('hush run --mask -- ./deploy.sh --verbose', 'hide secret values in the output')
      .example('hush run --watch --watch-grace 30s -- ./worker', 'restart when a value changes')
      .example('hush run --command \'echo "$DATABASE_URL" | wc -c\'', 'use a shell')
      .example('hush run --mount /run/secrets/app.env --no-env -- ./app', 'values in a 0600 file only')
      .example('hush run --role deploy --jwt-file /var/run/secrets/tokens/hush -- ./app', 'log in with a JWT (machine identity)')
  );
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run [args..]',
  describe: 'Run a command with the secrets of an environment injected (hush run -- CMD ARGS...)',
  builder: (y) => runOptions(y),
  handler: async (argv) => {
    // Everything `run` needs beyond flag parsing is loaded only now.
    const { runMain } = await import('../run/run.js');
    await runMain(argv, process.env);
  },
};
