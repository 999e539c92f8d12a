import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import { FileTooLargeError, readBounded } from '../common/files.js';
import { CliError, EXIT } from './output.js';
import { DEFAULT_ADDR } from 'hush-vault-sdk/defaults';
import { containsToken } from 'hush-vault-sdk/token-format';

/**
 * Where the CLI finds its server, token and target. Precedence, first wins:
 *   1. flags (--addr, --token-file, --role, --jwt-file, --ca-file, --project, --env, --profile)
 *   2. HUSH_ADDR, HUSH_TOKEN, HUSH_TOKEN_FILE, HUSH_ROLE, HUSH_JWT, HUSH_JWT_FILE, HUSH_CA_FILE, HUSH_PROJECT, HUSH_ENV (HUSH_PROFILE)
 *   3. .hush.json in the cwd or a parent (written by `hush setup`): project, env and addr, never a token
 *   4. the profile written by `hush login` (~/.config/hush/config.json, 0600)
 * A token and a role are two ways to the same credential: the one given at
 * the higher level wins, and both at one level is a usage error.
 */
export interface Connection {
  addr: string;
  token: string | null;
  /**
   * Machine identity: log in to `role` with a JWT instead of using a token
   * (then `token` is null). `read` gives the JWT, read anew at each login;
   * null when no JWT source was given (`hush login --oidc` brings its own).
   */
  jwt: JwtSource | null;
  project: string | null;
  env: string | null;
  /** A PEM file of private CA certificates to trust for an https server, or null for the public roots only. */
  caFile: string | null;
  /** Where caFile came from: a flag, HUSH_CA_FILE, a profile, or none. */
  caSource: string;
  profile: string;
  /** Where each value came from, for `hush login --json`/debugging (never the token itself). */
  sources: { addr: string; token: string; project: string; env: string };
}

export interface JwtSource {
  role: string;
  /** Reads the JWT (trimmed); throws a CliError when it cannot. */
  read: (() => string) | null;
  /** Where the role and the JWT come from, for messages (never the JWT itself). */
  source: string;
  /** Where the JWT comes from (`--jwt-file F`, `HUSH_JWT`, ...), or null when none was given. */
  from: string | null;
}

export interface Profile {
  addr: string;
  token: string;
  project?: string;
  env?: string;
  caFile?: string;
}
export interface ProfileFile {
  current?: string;
  profiles: Record<string, Profile>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'hush');
}

export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

export function readProfiles(env: NodeJS.ProcessEnv = process.env): ProfileFile {
  const p = profilePath(env);
  if (!existsSync(p)) return { profiles: {} };
  try {
    const parsed = JSON.parse(readFileSync(p, 'utf8')) as ProfileFile;
    return { current: parsed.current, profiles: parsed.profiles ?? {} };
  } catch {
    throw new CliError(`cannot read ${p}: not valid JSON (fix or delete it, then run hush login)`, EXIT.usage);
  }
}

/** Writes the profile file atomically with mode 0600 (its directory 0700). */
export async function writeProfiles(file: ProfileFile, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const p = profilePath(env);
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  const { writeSecretFile } = await import('../common/files.js');
  writeSecretFile(p, JSON.stringify(file, null, 2) + '\n');
  return p;
}

/** The nearest .hush.json from `cwd` upwards. It may name a project and env, never a token. */
export function findProjectFile(cwd: string): { path: string; project?: string; env?: string; addr?: string } | null {
  let dir = cwd;
  const { root } = parse(cwd);
  for (;;) {
    const p = join(dir, '.hush.json');
    if (existsSync(p)) {
      // A FIFO or a device would block or never end; the file is small JSON.
      if (!statSync(p).isFile()) throw new CliError(`${p} is not a regular file; .hush.json holds only project, env and addr`, EXIT.usage);
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(readBounded(p)) as Record<string, unknown>;
      } catch (e) {
        if (e instanceof FileTooLargeError)
          throw new CliError(`${p} is larger than 64 KiB; .hush.json holds only project, env and addr`, EXIT.usage);
        throw new CliError(
          `${p} is not valid JSON${(e as NodeJS.ErrnoException).code ? ` (${(e as NodeJS.ErrnoException).code})` : ''}`,
          EXIT.usage,
        );
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data))
        throw new CliError(`${p} must be a JSON object like {"project":"api","env":"dev"}`, EXIT.usage);
      if ('token' in data || containsToken(JSON.stringify(data))) {
        throw new CliError(
          `${p} contains a token; .hush.json may only hold project, env and addr (remove the token, use hush login)`,
          EXIT.usage,
        );
      }
      for (const k of ['project', 'env', 'addr']) {
        if (k in data && typeof data[k] !== 'string') throw new CliError(`${p}: "${k}" must be a string`, EXIT.usage);
      }
      const str = (k: string) => (typeof data[k] === 'string' && data[k] !== '' ? data[k] : undefined);
      return { path: p, project: str('project'), env: str('env'), addr: str('addr') };
    }
    if (dir === root) return null;
    dir = dirname(dir);
  }
}

export interface ConnectionFlags {
  addr?: string;
  'token-file'?: string;
  'ca-file'?: string;
  project?: string;
  env?: string;
  profile?: string;
  role?: string;
  'jwt-file'?: string;
}

function readTokenFile(path: string, what: string, kind = 'token'): string {
  try {
    return readBounded(path).trim();
  } catch (e) {
    if (e instanceof FileTooLargeError) throw new CliError(`${what} ${path} is larger than 64 KiB; it is not a ${kind} file`, EXIT.usage);
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`, EXIT.usage);
  }
}

/** A JWT file is read at every login: a Kubernetes projected token is rotated in place. */
function jwtFileReader(path: string, what: string): () => string {
  return () => {
    const jwt = readTokenFile(path, what, 'JWT');
    if (!jwt) throw new CliError(`${what} ${path} is empty`, EXIT.usage);
    return jwt;
  };
}

type Level = 'flag' | 'env' | 'profile' | 'none';

/**
 * The role and JWT to log in with, when a role is given: --role or
 * HUSH_ROLE; the JWT from --jwt-file, else HUSH_JWT (the JWT itself), else
 * HUSH_JWT_FILE.
 */
export function roleFrom(flags: ConnectionFlags, env: NodeJS.ProcessEnv): { level: Level; jwt: JwtSource | null } {
  if (flags.role === '') throw new CliError('--role needs a role name', EXIT.usage);
  if (flags['jwt-file'] === '') throw new CliError('--jwt-file needs a file name', EXIT.usage);
  const role = flags.role ?? (env.HUSH_ROLE?.trim() || undefined);
  if (role === undefined) {
    if (flags['jwt-file'] !== undefined)
      throw new CliError('--jwt-file needs the role to log in to: add --role NAME (or set HUSH_ROLE)', EXIT.usage);
    return { level: 'none', jwt: null };
  }
  const roleSource = flags.role !== undefined ? `role ${role}` : `role ${role} (HUSH_ROLE)`;
  let read: (() => string) | null = null;
  let from: string | null = null;
  if (flags['jwt-file']) {
    read = jwtFileReader(flags['jwt-file'], '--jwt-file');
    from = `--jwt-file ${flags['jwt-file']}`;
  } else if (env.HUSH_JWT?.trim()) {
    const jwt = env.HUSH_JWT.trim();
    read = () => jwt;
    from = 'HUSH_JWT';
  } else if (env.HUSH_JWT_FILE?.trim()) {
    read = jwtFileReader(env.HUSH_JWT_FILE.trim(), 'HUSH_JWT_FILE');
    from = `HUSH_JWT_FILE ${env.HUSH_JWT_FILE.trim()}`;
  }
  return {
    level: flags.role !== undefined ? 'flag' : 'env',
    jwt: { role, read, from, source: from ? `${roleSource} with the JWT from ${from}` : roleSource },
  };
}

/** The error when a role is given without a JWT to log in with. */
export function jwtMissing(jwt: JwtSource): CliError {
  return new CliError(
    `${jwt.source} is given, but no JWT to log in with: pass --jwt-file FILE, or set HUSH_JWT or ` + `HUSH_JWT_FILE`,
    EXIT.usage,
    'jwt_missing',
  );
}

/** The SDK's `auth` option for a connection that logs in with a JWT. */
export function jwtAuth(jwt: JwtSource): { role: string; jwt: () => string } {
  if (!jwt.read) throw jwtMissing(jwt);
  return { role: jwt.role, jwt: jwt.read };
}

/** True when two server addresses name the same server (scheme, host, port and path prefix). */
function sameServer(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const norm = (x: string) => {
    try {
      const u = new URL(x.trim());
      return (u.origin + u.pathname).replace(/\/+$/, '');
    } catch {
      return x.trim();
    }
  };
  return norm(a) === norm(b);
}

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Connection {
  const file = readProfiles(env);
  const named = flags.profile || env.HUSH_PROFILE;
  let profileName = named || file.current || 'default';
  if (named && !file.profiles[profileName]) {
    throw new CliError(`no profile named "${profileName}" in ${profilePath(env)}; run hush login --profile ${profileName}`, EXIT.usage);
  }
  let profile: Profile | undefined = file.profiles[profileName];
  const local = findProjectFile(cwd);
  // A .hush.json is usually committed, so it is not trusted with credentials:
  // the server it names is used only with a token saved for that server (the
  // profile whose address it is), never with one meant for another server.
  const fileAddr = !flags.addr && !env.HUSH_ADDR && local?.addr ? local.addr : undefined;
  if (fileAddr && !named && !sameServer(profile?.addr, fileAddr)) {
    const match = Object.entries(file.profiles).find(([, p]) => sameServer(p.addr, fileAddr));
    if (match) [profileName, profile] = match;
  }
  let token: string | null = null;
  let tokenSource = 'none';
  if (flags['token-file'] === '') throw new CliError('--token-file needs a file name', EXIT.usage);
  const byRole = roleFrom(flags, env);
  const tokenLevel: Level = flags['token-file']
    ? 'flag'
    : env.HUSH_TOKEN?.trim() || env.HUSH_TOKEN_FILE?.trim()
      ? 'env'
      : profile?.token
        ? 'profile'
        : 'none';
  if (byRole.jwt && byRole.level === tokenLevel) {
    throw new CliError(
      byRole.level === 'flag'
        ? 'give either --token-file or --role, not both'
        : 'both a token (HUSH_TOKEN or HUSH_TOKEN_FILE) and a role (HUSH_ROLE) are set; unset one',
      EXIT.usage,
    );
  }
  // The credential given at the higher level wins: a --role over HUSH_TOKEN or a profile, a --token-file over HUSH_ROLE.
  const jwt = byRole.jwt && (tokenLevel === 'none' || tokenLevel === 'profile' || byRole.level === 'flag') ? byRole.jwt : null;
  if (jwt) {
    tokenSource = jwt.source;
  } else if (flags['token-file']) {
    token = readTokenFile(flags['token-file'], '--token-file');
    tokenSource = '--token-file';
  } else if (env.HUSH_TOKEN?.trim()) {
    token = env.HUSH_TOKEN.trim();
    tokenSource = 'HUSH_TOKEN';
  } else if (env.HUSH_TOKEN_FILE?.trim()) {
    token = readTokenFile(env.HUSH_TOKEN_FILE.trim(), 'HUSH_TOKEN_FILE');
    tokenSource = `HUSH_TOKEN_FILE ${env.HUSH_TOKEN_FILE.trim()}`;
  } else if (profile?.token) {
    token = profile.token;
    tokenSource = `profile ${profileName}`;
  }
  const pick = (
    flag: string | undefined,
    envName: string,
    fromFile: string | undefined,
    fromProfile: string | undefined,
  ): [string | null, string] => {
    if (flag) return [flag, 'flag'];
    if (env[envName]) return [env[envName], envName];
    if (fromFile) return [fromFile, local!.path];
    if (fromProfile) return [fromProfile, `profile ${profileName}`];
    return [null, 'none'];
  };
  if (fileAddr && jwt) {
    throw new CliError(
      `${local!.path} names the server ${fileAddr}, but a JWT is only sent to a server you chose: ` +
        `give the server with --addr or HUSH_ADDR`,
      EXIT.usage,
      'addr_not_trusted',
    );
  }
  if (fileAddr && token !== null && !(tokenSource === `profile ${profileName}` && sameServer(profile?.addr, fileAddr))) {
    throw new CliError(
      `${local!.path} names the server ${fileAddr}, but the token from ${tokenSource} was not saved ` +
        `for that server, and a token is only sent where you chose: ` +
        `run hush login --addr ${fileAddr}, or give the server with --addr or HUSH_ADDR`,
      EXIT.usage,
      'addr_not_trusted',
    );
  }
  const [addr, addrSource] = pick(flags.addr, 'HUSH_ADDR', local?.addr, profile?.addr);
  const [caFile, caSource] = pick(flags['ca-file'], 'HUSH_CA_FILE', undefined, profile?.caFile);
  const [project, projectSource] = pick(flags.project, 'HUSH_PROJECT', local?.project, profile?.project);
  const [envName, envSource] = pick(flags.env, 'HUSH_ENV', local?.env, profile?.env);
  return {
    addr: addr ?? DEFAULT_ADDR,
    token,
    jwt,
    project,
    env: envName,
    caFile,
    caSource,
    profile: profileName,
    sources: { addr: addr ? addrSource : 'default', token: tokenSource, project: projectSource, env: envSource },
  };
}

/**
 * The SDK options that decide how a client connects: with a CA, the SDK
 * builds its CA-aware node:http fetch (reading HUSH_CA_FILE itself, so its
 * messages name it); without, node:http too, which starts faster than the
 * global fetch.
 */
export async function transportOptions(c: Pick<Connection, 'caFile' | 'caSource'>): Promise<{ caFile?: string; fetch?: typeof fetch }> {
  if (c.caSource === 'HUSH_CA_FILE') return {};
  if (c.caFile) return { caFile: c.caFile };
  const { createNodeFetch } = await import('hush-vault-sdk');
  return { fetch: createNodeFetch() };
}

/** The project and env a command works on, or a usage error saying how to give them. */
export function requireTarget(c: Connection): { project: string; env: string } {
  if (!c.project || !c.env) {
    throw new CliError(
      `no ${!c.project ? 'project' : 'environment'} given: use --project/--env, ` +
        `HUSH_PROJECT/HUSH_ENV, or a .hush.json with {"project":"...","env":"..."}`,
      EXIT.usage,
    );
  }
  return { project: c.project, env: c.env };
}
