import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { FileTooLargeError, readBounded } from '../../common/files.js';
import { DEFAULT_ADDR } from 'hush-vault-sdk/defaults';
import { profilePath, readProfiles, roleFrom, writeProfiles } from '../connection.js';
import { clientFor, connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printFields, printTable, say, shortTime } from '../output.js';
import { readHidden, readStdin } from '../prompt.js';

interface LoginArgs extends GlobalArgs {
  'token-stdin'?: boolean;
  oidc?: string;
  audience?: string;
  role?: string;
  'jwt-file'?: string;
}

const OIDC_PROVIDERS = ['github-actions'] as const;

/**
 * The JWT for `hush login --role`: from the CI platform (--oidc), or from
 * --jwt-file, HUSH_JWT or HUSH_JWT_FILE. Never printed.
 */
async function readJwt(argv: LoginArgs, role: string): Promise<string> {
  if (argv.oidc !== undefined) {
    const { createNodeFetch, DEFAULT_JWT_AUDIENCE, githubActionsJwt } = await import('hush-vault-sdk');
    // The Actions runtime is not the Hush server: no --ca-file, the public roots only.
    return githubActionsJwt({ audience: argv.audience ?? DEFAULT_JWT_AUDIENCE, fetch: createNodeFetch() });
  }
  const jwt = roleFrom({ role, 'jwt-file': argv['jwt-file'] }, process.env).jwt!;
  if (!jwt.read)
    throw new CliError(
      `hush login --role ${role} needs the JWT: pass --jwt-file FILE, set HUSH_JWT or HUSH_JWT_FILE, or use --oidc github-actions`,
      EXIT.usage,
      'jwt_missing',
    );
  return jwt.read();
}

/** `hush login --role R [--oidc github-actions]`: a JWT login; the token it gets is saved like a pasted one. */
async function tokenFromJwt(
  argv: LoginArgs,
  addr: string,
  caFile: string | undefined,
): Promise<{ token: string; source: string; role: string }> {
  const role = argv.role ?? (process.env.HUSH_ROLE?.trim() || undefined);
  if (!role) throw new CliError('--oidc needs the role to log in to: add --role NAME (or set HUSH_ROLE)', EXIT.usage);
  if (argv['token-stdin'] || argv['token-file'] !== undefined)
    throw new CliError('a JWT login (--role, --oidc) reads no token: drop --token-stdin and --token-file', EXIT.usage);
  if (argv.oidc !== undefined && argv['jwt-file'] !== undefined)
    throw new CliError('give either --oidc or --jwt-file, not both', EXIT.usage);
  const jwt = await readJwt(argv, role);
  const client = await clientFor(
    {
      addr,
      token: null,
      caFile: caFile ?? null,
      caSource: caFile ? 'login' : 'none',
      sources: { addr: '', token: '', project: '', env: '' },
    },
    argv,
    { tokenOptional: true },
  );
  try {
    const r = await client.auth.login(role, jwt);
    return { token: r.token, source: `the JWT login to role ${role}`, role };
  } catch (e) {
    const err = CliError.from(e);
    throw new CliError(`login failed, nothing saved: ${err.message}`, err.exitCode, err.code);
  }
}

async function readToken(argv: LoginArgs): Promise<{ token: string; source: string }> {
  let token: string;
  let source: string;
  if (argv['token-stdin']) {
    token = await readStdin();
    source = 'stdin';
  } else if (argv['token-file']) {
    try {
      token = readBounded(argv['token-file']);
    } catch (e) {
      if (e instanceof FileTooLargeError)
        throw new CliError(`--token-file ${argv['token-file']} is larger than 64 KiB; it is not a token file`, EXIT.usage);
      throw new CliError(`cannot read --token-file ${argv['token-file']}: ${(e as NodeJS.ErrnoException).code}`, EXIT.usage);
    }
    source = `--token-file ${argv['token-file']}`;
  } else if (process.stdin.isTTY) {
    token = await readHidden('Hush API token (input hidden): ');
    source = 'the prompt';
  } else {
    throw new CliError('no terminal to prompt for the token: pipe it with --token-stdin, or use --token-file FILE', EXIT.usage);
  }
  token = token.trim();
  if (!token) throw new CliError(`no token read from ${source}`, EXIT.usage);
  return { token, source };
}

export const loginCommand: CommandModule<object, LoginArgs> = {
  command: 'login',
  describe: 'Save a server address and token as a profile (token checked against the server first)',
  builder: (y) =>
    y
      .option('token-stdin', { type: 'boolean', describe: 'Read the token from stdin instead of a hidden prompt' })
      .option('oidc', {
        type: 'string',
        choices: OIDC_PROVIDERS,
        describe: "With --role: log in with this CI platform's ID token (GitHub Actions needs permissions: id-token: write)",
      })
      .option('audience', { type: 'string', describe: 'With --oidc: the audience to ask the ID token for [default: hush]' })
      .example('hush login --addr https://vault.example.com:8420', 'prompt for the token')
      .example('hush login --addr https://vault.example.com:8420 --profile prod --token-stdin < token.txt', 'a second, named profile')
      .example('hush login --addr http://127.0.0.1:8420 -p api -e dev', 'with a default project and environment')
      .example(
        'hush login --addr https://vault.example.com --oidc github-actions --role deploy',
        'in a GitHub Actions job (machine identity)',
      )
      .example(
        'hush login --addr https://vault.example.com --role k8s-api --jwt-file /var/run/secrets/tokens/hush',
        'with a JWT from a file',
      ),
  handler: async (argv) => {
    const file = readProfiles();
    const name = argv.profile ?? 'default';
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name))
      throw new CliError(`"${name}" is not a valid profile name (letters, digits, . _ -)`, EXIT.usage);
    const old = file.profiles[name];
    const addr = argv.addr ?? process.env.HUSH_ADDR ?? old?.addr ?? DEFAULT_ADDR;
    const caArg = argv['ca-file'] ?? process.env.HUSH_CA_FILE;
    const caFile = caArg ? resolve(caArg) : old?.caFile;
    if (argv.audience !== undefined && argv.oidc === undefined) throw new CliError('--audience goes with --oidc', EXIT.usage);
    if (argv['jwt-file'] !== undefined && argv.role === undefined)
      throw new CliError('--jwt-file needs the role to log in to: add --role NAME', EXIT.usage);
    const byJwt = argv.oidc !== undefined || argv.role !== undefined ? await tokenFromJwt(argv, addr, caFile) : null;
    const { token, source } = byJwt ?? (await readToken(argv));
    const client = await clientFor(
      {
        addr,
        token,
        caFile: caFile ?? null,
        caSource: caFile ? 'login' : 'none',
        sources: { addr: '', token: source, project: '', env: '' },
      },
      argv,
    );
    let me;
    try {
      me = await client.tokens.self();
    } catch (e) {
      const err = CliError.from(e);
      throw new CliError(`login failed, nothing saved: ${err.message}`, err.exitCode, err.code);
    }
    file.profiles[name] = {
      addr: client.addr,
      token,
      ...((argv.project ?? old?.project) ? { project: argv.project ?? old?.project } : {}),
      ...((argv.env ?? old?.env) ? { env: argv.env ?? old?.env } : {}),
      ...(caFile ? { caFile } : {}),
    };
    file.current = name;
    const path = await writeProfiles(file);
    const out = {
      profile: name,
      addr: client.addr,
      path,
      project: file.profiles[name].project ?? null,
      env: file.profiles[name].env ?? null,
      token: { id: me.id, name: me.name, scopes: me.scopes, expiresAt: me.expiresAt },
      ...(byJwt ? { role: byJwt.role } : {}),
    };
    emit(argv, out, () => {
      say(`Logged in to ${client.addr} as ${me.name} (${me.scopes.join(', ')}).`);
      say(`Profile "${name}" saved in ${path} (mode 0600) and made current.`);
      if (me.expiresAt) say(`The token expires at ${shortTime(me.expiresAt)}.`);
    });
  },
};

/**
 * The profile commands use when none is named on the command line: HUSH_PROFILE, else the one made current
 * by hush login, else "default" (resolveConnection in connection.ts); null when that one does not exist.
 * `hush profiles` stars this one, so the star never disagrees with what commands do.
 */
function inUse(file: { current?: string; profiles: Record<string, unknown> }): string | null {
  const name = process.env.HUSH_PROFILE || file.current || 'default';
  return Object.prototype.hasOwnProperty.call(file.profiles, name) ? name : null;
}

export const logoutCommand: CommandModule<object, GlobalArgs> = {
  command: 'logout',
  describe: 'Remove a saved profile and its token from this machine (the token stays valid; revoke it with hush tokens revoke)',
  handler: async (argv) => {
    const file = readProfiles();
    const name = argv.profile ?? process.env.HUSH_PROFILE ?? file.current ?? 'default';
    if (!file.profiles[name]) throw new CliError(`no profile named "${name}" in ${profilePath()}`, EXIT.notFound, 'profile_not_found');
    delete file.profiles[name];
    if (file.current === name) delete file.current;
    const path = await writeProfiles(file);
    // What commands use from now on (the same rule as connection.ts): say it, so nothing changes silently.
    const next = inUse(file);
    const after = next ? ` Commands now use profile "${next}".` : ' No profile is in use now; run hush login to add one.';
    emit(argv, { profile: name, removed: true, path, current: next }, () => say(`Removed profile "${name}" from ${path}.${after}`));
  },
};

export const profilesCommand: CommandModule<object, GlobalArgs> = {
  command: 'profiles',
  describe: 'List the profiles saved by hush login (never their tokens)',
  handler: (argv) => {
    const file = readProfiles();
    const current = inUse(file);
    const rows = Object.entries(file.profiles)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, p]) => ({
        name,
        addr: p.addr,
        project: p.project ?? null,
        env: p.env ?? null,
        current: current === name,
      }));
    emit(argv, rows, () =>
      printTable(
        rows.map((r) => ({ ...r, current: r.current ? '*' : '' })),
        ['current', 'name', 'addr', 'project', 'env'],
        { current: ' ' },
      ),
    );
  },
};

export const whoamiCommand: CommandModule<object, GlobalArgs> = {
  command: 'whoami',
  describe: 'Show the server, token, project and environment this directory resolves to, and where each came from',
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const me = await client.tokens.self();
    const out = {
      addr: client.addr,
      profile: conn.profile,
      project: conn.project,
      env: conn.env,
      caFile: conn.caFile,
      sources: { ...conn.sources, caFile: conn.caSource },
      token: { id: me.id, name: me.name, scopes: me.scopes, expiresAt: me.expiresAt },
    };
    emit(argv, out, () =>
      printFields([
        ['server', `${client.addr} (${conn.sources.addr})`],
        ['token', `${me.name} ${me.id} (${conn.sources.token})`],
        ['scopes', me.scopes.join(' ')],
        ['expires', shortTime(me.expiresAt) ?? 'never'],
        ['project', conn.project ? `${conn.project} (${conn.sources.project})` : null],
        ['env', conn.env ? `${conn.env} (${conn.sources.env})` : null],
        ['ca file', conn.caFile ? `${conn.caFile} (${conn.caSource})` : null],
      ]),
    );
  },
};
