import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { findProjectFile, resolveConnection } from '../connection.js';
import { checkResourceName, clientFor, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, say, warn } from '../output.js';
import { readLine } from '../prompt.js';

/**
 * `hush setup`: links the current directory to a project and environment
 * (and optionally a server) by writing .hush.json, as `doppler setup` and
 * `infisical init` do. It never writes a token and never creates a vault.
 */

interface SetupArgs extends GlobalArgs {
  yes?: boolean;
}

export const PROJECT_FILE = '.hush.json';

/** Asks until the answer passes `check` (which throws a CliError explaining why not), at most three times. */
async function ask(question: string, dflt: string | null, choices: string[] | null, check: (a: string) => void): Promise<string> {
  const hint = choices && choices.length ? ` (${choices.slice(0, 20).join(', ')}${choices.length > 20 ? ', ...' : ''})` : '';
  for (let attempt = 1; ; attempt++) {
    const answer = (await readLine(`${question}${hint}${dflt ? ` [${dflt}]` : ''}: `)) || dflt || '';
    try {
      check(answer);
      return answer;
    } catch (e) {
      if (attempt >= 3 || !(e instanceof CliError)) throw e;
      process.stderr.write(`  ${e.message}\n`);
    }
  }
}

/** The address must be one every client accepts, and a file meant to be committed must not carry credentials. */
async function checkAddr(addr: string): Promise<void> {
  if (/hush_[0-9A-Za-z]{10}/.test(addr)) throw new CliError('the server address contains a token; .hush.json never holds one', EXIT.usage);
  const { createClient } = await import('hush-vault-sdk');
  try {
    createClient({ addr, token: undefined, tokenFile: undefined });
  } catch (e) {
    throw new CliError(`--addr: ${(e as Error).message.replace(/; pass the token as .*$/, '')}`, EXIT.usage);
  }
}

/** Names from the server when a token is at hand; null when there is none or the server cannot say. */
async function names(list: () => Promise<{ name: string }[]>): Promise<string[] | null> {
  try {
    return (await list()).map((x) => x.name);
  } catch {
    return null;
  }
}

export const setupCommand: CommandModule<object, SetupArgs> = {
  command: 'setup',
  describe: 'Link this directory to a project and environment: writes .hush.json (project, env, addr; never a token)',
  builder: (y) =>
    (y as Argv<SetupArgs>)
      .option('yes', { type: 'boolean', describe: 'Replace an existing .hush.json without asking' })
      .example('hush setup', "ask on the terminal (the server's projects and environments are offered when a token is available)")
      .example('hush setup -p api -e dev', 'no questions')
      .example('hush setup -p api -e dev --addr https://vault.internal:8420', 'and the server for this directory'),
  handler: async (argv) => {
    const path = join(process.cwd(), PROJECT_FILE);
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
    let existing: Record<string, unknown> = {};
    if (existsSync(path)) {
      try {
        const found = findProjectFile(process.cwd());
        if (found && found.path === path) existing = { project: found.project, env: found.env, addr: found.addr };
      } catch {
        existing = { unreadable: true }; // replaced with --yes (or after asking)
      }
    }
    // What the directory resolves to today (flags, HUSH_*, a parent .hush.json, the profile) is the default.
    // A broken .hush.json here is what setup replaces: resolve the defaults from the parent directory then.
    let conn;
    try {
      conn = resolveConnection(argv);
    } catch {
      conn = resolveConnection(argv, process.env, dirname(process.cwd()));
    }
    let addr = argv.addr ?? process.env.HUSH_ADDR ?? (typeof existing.addr === 'string' ? existing.addr : undefined);
    let project = argv.project ?? process.env.HUSH_PROJECT;
    let env = argv.env ?? process.env.HUSH_ENV;
    if ((!project || !env) && !tty) {
      throw new CliError('no terminal to ask on: give the project and environment, e.g. hush setup --project api --env dev', EXIT.usage);
    }
    if (!addr && tty && !project) {
      const a = await ask('Server address', conn.addr, null, (v) => {
        if (!/^https?:\/\/./.test(v)) throw new CliError(`"${v.slice(0, 80)}" is not an http(s) URL`, EXIT.usage);
      });
      if (a !== conn.addr) addr = a;
    }
    if (addr !== undefined) await checkAddr(addr);
    const client = conn.token ? await clientFor({ ...conn, addr: addr ?? conn.addr }, argv).catch(() => null) : null;
    if (!project)
      project = await ask('Project', conn.project, client ? await names(() => client.projects.list()) : null, (v) =>
        checkResourceName('project', v),
      );
    checkResourceName('project', project);
    if (!env)
      env = await ask('Environment', conn.env, client ? await names(() => client.envs.list(project)) : null, (v) =>
        checkResourceName('environment', v),
      );
    checkResourceName('environment', env);
    // With a token, check that the pair exists, so a typo is caught now and not at the next deploy.
    let checked = false;
    if (client) {
      const { isNotFoundError } = await import('hush-vault-sdk');
      let envs: string[] | null = null;
      try {
        envs = (await client.envs.list(project)).map((e) => e.name);
      } catch (e) {
        if (isNotFoundError(e)) {
          const projects = await names(() => client.projects.list());
          throw new CliError(
            `the server has no project ${project}${projects?.length ? ` (it has: ${projects.slice(0, 20).join(', ')})` : ''}; nothing written`,
            EXIT.notFound,
            'project_not_found',
          );
        }
        // Unreachable, or a token that may not list: written unchecked, and said so below.
      }
      if (envs !== null) {
        if (!envs.includes(env))
          throw new CliError(
            `project ${project} has no environment ${env}${envs.length ? ` (it has: ${envs.join(', ')})` : ''}; nothing written`,
            EXIT.notFound,
            'env_not_found',
          );
        checked = true;
      }
    }
    const next: Record<string, string> = { project, env, ...(addr !== undefined ? { addr } : {}) };
    if (existsSync(path) && !argv.yes && JSON.stringify(JSON.parse(JSON.stringify(existing))) !== JSON.stringify(next)) {
      if (!tty) throw new CliError(`${path} exists; pass --yes to replace it`, EXIT.conflict, 'already_exists');
      const ok = await readLine(`${path} exists (${JSON.stringify(existing)}). Replace it? [y/N] `);
      if (!/^y(es)?$/i.test(ok)) throw new CliError('not replaced; nothing written', EXIT.usage);
    }
    // Temp file and rename: a .hush.json that is a symlink is replaced, never written through.
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(next, null, 2) + '\n', { flag: 'wx', mode: 0o644 });
    try {
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    emit(argv, { path, ...next, checked }, () => {
      say(`Wrote ${path}: project ${project}, environment ${env}${addr !== undefined ? `, server ${addr}` : ''}.`);
      say(`Commands run in this directory now use them, e.g. hush run -- npm start.`);
      if (!checked) warn('Not checked against the server (no token, or the server could not be asked); hush whoami shows what resolves.');
    });
  },
};

/** `hush init` used to create a vault in the current directory; now it only says where to go. */
export const initPointer: CommandModule = {
  command: 'init',
  describe: false,
  builder: (y) => y.strict(false),
  handler: () => {
    throw new CliError(
      'hush init is gone: link this directory to a project with hush setup; create a vault with hush operator init',
      EXIT.usage,
    );
  },
};
