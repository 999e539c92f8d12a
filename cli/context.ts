import { MAX_TIMER_MS } from '../common/timers.js';
import type { Argv } from 'yargs';
import type { HushClient } from 'hush-vault-sdk';
import {
  jwtAuth,
  requireTarget,
  resolveConnection,
  transportOptions,
  type Connection,
  type ConnectionFlags,
  type JwtSource,
} from './connection.js';
import { CliError, EXIT } from './output.js';

/** Options every command accepts (declared once, globally, in main.ts). */
export interface GlobalArgs extends ConnectionFlags {
  json?: boolean;
  timeout?: number;
  retries?: number;
  token?: unknown;
}

export const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const RESOURCE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Throws a usage error unless `name` is a valid environment variable name. */
export function checkVarName(name: string): string {
  if (!VAR_NAME.test(name))
    throw new CliError(
      `"${name.slice(0, 80)}" is not a valid variable name (letters, digits and _, not starting with a digit)`,
      EXIT.usage,
    );
  return name;
}

export function checkResourceName(kind: 'project' | 'environment', name: string): string {
  if (!RESOURCE_NAME.test(name))
    throw new CliError(
      `"${name.slice(0, 80)}" is not a valid ${kind} name (lower-case letters, digits, . _ -; up to 63 characters, starting with a letter or digit)`,
      EXIT.usage,
    );
  return name;
}

/** Declares the options shared by every command (connection, target, output). */
export function globalOptions<T>(y: Argv<T>): Argv<T> {
  const group = 'Global options:';
  return (
    y
      .option('addr', {
        type: 'string',
        global: true,
        group,
        describe: 'Server URL [env HUSH_ADDR; default: profile, else http://127.0.0.1:8420]',
      })
      .option('token-file', {
        type: 'string',
        global: true,
        group,
        describe: 'Read the API token from this file [env HUSH_TOKEN_FILE; HUSH_TOKEN holds the token itself]',
      })
      .option('role', {
        type: 'string',
        global: true,
        group,
        describe: 'Log in to this JWT role instead of using a token (machine identity) [env HUSH_ROLE]',
      })
      .option('jwt-file', {
        type: 'string',
        global: true,
        group,
        describe: 'With --role: read the JWT from this file, anew at each login [env HUSH_JWT_FILE; HUSH_JWT holds the JWT itself]',
      })
      .option('ca-file', {
        type: 'string',
        global: true,
        group,
        describe: 'Trust the CA certificate(s) in this PEM file for an https server [env HUSH_CA_FILE]',
      })
      .option('profile', {
        type: 'string',
        global: true,
        group,
        describe: 'Profile saved by hush login [env HUSH_PROFILE; default: the current one]',
      })
      .option('project', { alias: 'p', type: 'string', global: true, group, describe: 'Project [env HUSH_PROJECT, .hush.json, profile]' })
      .option('env', { alias: 'e', type: 'string', global: true, group, describe: 'Environment [env HUSH_ENV, .hush.json, profile]' })
      .option('json', { type: 'boolean', global: true, group, describe: 'Machine-readable JSON output' })
      .option('timeout', {
        type: 'number',
        global: true,
        group,
        hidden: true,
        describe: 'Per-request timeout in ms [env HUSH_TIMEOUT; default 10000]',
      })
      .option('retries', {
        type: 'number',
        global: true,
        group,
        hidden: true,
        describe: 'Retries of idempotent requests [env HUSH_RETRIES; default 2]',
      })
      // Declared only to refuse it with a helpful message: a token in argv lands in `ps` and shell history.
      .option('token', { type: 'string', global: true, hidden: true })
      .check((a) => {
        if (a.token !== undefined) {
          throw new CliError(
            'a token is never accepted on the command line (it would show in ps and shell history); use --token-file FILE, HUSH_TOKEN, or hush login',
            EXIT.usage,
          );
        }
        return true;
      })
  );
}

function numberSetting(flag: number | undefined, envName: string, dflt: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  const from = flag !== undefined ? `--${name}` : envName;
  const raw = process.env[envName];
  if (flag === undefined && (raw === undefined || raw.trim() === '')) return dflt;
  const n = flag ?? Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${from} must be a non-negative number`, EXIT.usage);
  if (n > max)
    throw new CliError(
      `${from} must be at most ${max}${max === MAX_TIMER_MS ? ' (milliseconds: about 24.8 days, the longest delay a timer holds)' : ''}`,
      EXIT.usage,
    );
  return n;
}

export interface Session {
  client: HushClient;
  conn: Connection;
}

/**
 * Resolves the connection and builds an SDK client. The SDK is imported
 * here, lazily, so `hush --help` and `hush run` never pay for it unless used.
 */
export async function connect(argv: GlobalArgs, opts: { tokenOptional?: boolean } = {}): Promise<Session> {
  const conn = resolveConnection(argv);
  return { client: await clientFor(conn, argv, opts), conn };
}

/** `tokenOptional`: the calls that need none (seal status, unseal) work without one. */
export async function clientFor(
  conn: Pick<Connection, 'addr' | 'token' | 'sources' | 'caFile' | 'caSource'> & { jwt?: JwtSource | null },
  argv: GlobalArgs,
  opts: { tokenOptional?: boolean } = {},
): Promise<HushClient> {
  if (!conn.token && !conn.jwt && !opts.tokenOptional) {
    throw new CliError(
      'no API token: run hush login, set HUSH_TOKEN or HUSH_TOKEN_FILE, or pass --token-file FILE (or log in to a JWT role with --role)',
      EXIT.auth,
      'token_missing',
    );
  }
  // A call that needs no token (seal status, unseal) does not fail on a malformed one it would not send anyway.
  if (opts.tokenOptional && conn.token) {
    const { checkTokenFormat } = await import('hush-vault-sdk/token-format');
    if (!checkTokenFormat(conn.token).ok) conn = { ...conn, token: null };
  }
  const auth = conn.jwt ? jwtAuth(conn.jwt) : undefined;
  const timeoutMs = numberSetting(argv.timeout, 'HUSH_TIMEOUT', 10_000, 'timeout', MAX_TIMER_MS) || 10_000;
  const retries = Math.floor(numberSetting(argv.retries, 'HUSH_RETRIES', 2, 'retries'));
  const { createClient } = await import('hush-vault-sdk');
  try {
    return createClient({
      // null (not undefined): the CLI has resolved HUSH_TOKEN itself; the SDK must not read it again.
      addr: conn.addr,
      ...(auth ? { auth } : { token: conn.token ?? null }),
      timeoutMs,
      retries,
      ...(await transportOptions(conn)),
      onWarning: (message) => process.stderr.write(`${message}\n`),
    });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'token_malformed') {
      // The SDK names "the token given to createClient"; the user needs to know which of their sources it was.
      const reason = String(err.message).replace(/^.*? is not a valid Hush token: /, '');
      throw new CliError(`the token from ${conn.sources.token} is not a valid Hush token: ${reason}`, EXIT.auth, 'token_malformed');
    }
    throw CliError.from(e, EXIT.usage);
  }
}

/** The project and env to work on, with a usage error saying how to give them. */
export function target(conn: Connection): { project: string; env: string } {
  return requireTarget(conn);
}

/** The project to work on (positional, then -p/HUSH_PROJECT/.hush.json/profile). */
export function projectOf(conn: Connection, positional?: string): string {
  const p = positional ?? conn.project;
  if (!p) throw new CliError('no project given: pass it as an argument or use --project, HUSH_PROJECT or a .hush.json', EXIT.usage);
  return p;
}
