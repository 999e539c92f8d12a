import type { CommandModule } from 'yargs';
import type { JwtRole, JwtRoleCreateInput } from 'hush-vault-sdk';
import { FileTooLargeError, readBounded } from '../../common/files.js';
import { connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printFields, printTable, say, shortTime } from '../output.js';
import { dict } from '../../common/dict.js';

interface CreateArgs extends GlobalArgs {
  name: string;
  issuer: string;
  audience: string;
  scope: string[];
  ttl: string;
  claim?: string[];
  sub?: string;
  'require-claim'?: string[];
  'jwks-url'?: string;
  'jwks-file'?: string;
  'public-key-file'?: string;
}

const usage = (msg: string) => new CliError(msg, EXIT.usage);

/** Repeatable flags that also take comma lists (`--scope a --scope b,c`). */
const list1 = (v: string[] | undefined) =>
  (v ?? [])
    .flatMap((s) => String(s).split(','))
    .map((s) => s.trim())
    .filter(Boolean);

/** `--claim k=v` flags: a key given twice takes a list of values, any of which matches. */
export function parseClaims(raw: string[] | undefined): Record<string, string | string[]> {
  const out = dict<string | string[]>();
  for (const c of raw ?? []) {
    const s = String(c);
    const eq = s.indexOf('=');
    if (eq <= 0) throw usage(`--claim "${s.slice(0, 80)}" is not NAME=VALUE (e.g. --claim repository=acme/api)`);
    const key = s.slice(0, eq).trim();
    const value = s.slice(eq + 1);
    if (!key) throw usage(`--claim "${s.slice(0, 80)}" has no claim name`);
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { ...out };
}

function readLocal(path: string, flag: string, max = 1_048_576): string {
  try {
    return readBounded(path, max);
  } catch (e) {
    if (e instanceof FileTooLargeError) throw usage(`${flag} ${path} is larger than ${max / 1024} KiB`);
    throw usage(`cannot read ${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/** Private JWK members: a JWKS that has them holds a private key, which must never leave this machine. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/**
 * The key source of a new role: at most one of --jwks-url, --jwks-file
 * (sent as `jwks`), --public-key-file (sent as `publicKey`); none means the
 * server finds the keys by the issuer's OIDC discovery.
 */
export function keySource(
  a: Pick<CreateArgs, 'jwks-url' | 'jwks-file' | 'public-key-file'>,
): Pick<JwtRoleCreateInput, 'jwksUrl' | 'jwks' | 'publicKey'> {
  const given = (['jwks-url', 'jwks-file', 'public-key-file'] as const).filter((k) => a[k] !== undefined);
  if (given.length > 1)
    throw usage(`give only one of --jwks-url, --jwks-file and --public-key-file (got ` + `${given.map((k) => `--${k}`).join(' and ')})`);
  if (given.length === 0) return {};
  if (a['jwks-url'] !== undefined) {
    let u: URL;
    try {
      u = new URL(a['jwks-url']);
    } catch {
      throw usage(`--jwks-url "${a['jwks-url'].slice(0, 200)}" is not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw usage('--jwks-url must be an http(s) URL');
    return { jwksUrl: a['jwks-url'] };
  }
  if (a['jwks-file'] !== undefined) {
    const path = a['jwks-file'];
    let jwks: unknown;
    try {
      jwks = JSON.parse(readLocal(path, '--jwks-file'));
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw usage(`--jwks-file ${path} is not JSON (expected a JWKS document: {"keys": [...]})`);
    }
    const keys = (jwks as { keys?: unknown } | null)?.keys;
    if (
      typeof jwks !== 'object' ||
      jwks === null ||
      Array.isArray(jwks) ||
      !Array.isArray(keys) ||
      keys.length === 0 ||
      !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))
    ) {
      throw usage(`--jwks-file ${path} is not a JWKS document ({"keys": [{...}, ...]} with at least one key)`);
    }
    const secret = (keys as Record<string, unknown>[]).flatMap((k) => PRIVATE_JWK_MEMBERS.filter((m) => m in k));
    if (secret.length)
      throw usage(`--jwks-file ${path} holds private or secret key material ("${secret[0]}"); give the issuer's ` + `public keys only`);
    return { jwks: jwks as JwtRoleCreateInput['jwks'] };
  }
  const path = a['public-key-file']!;
  const pem = readLocal(path, '--public-key-file', 65_536);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem))
    throw usage(`--public-key-file ${path} holds a private key; give the public key (openssl pkey -pubout)`);
  if (!/-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem))
    throw usage(`--public-key-file ${path} holds no PEM public key (-----BEGIN PUBLIC KEY-----)`);
  return { publicKey: pem };
}

const claimText = (claims: Record<string, string | string[]>) =>
  Object.entries(claims)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`)
    .join(' ');

const KEY_TEXT: Record<string, string> = {
  discovery: 'OIDC discovery from the issuer',
  jwks: 'JWKS (stored with the role)',
  public_key: 'public key (stored with the role)',
};
const keyText = (r: JwtRole) => (r.keySource === 'jwks_url' ? r.jwksUrl : (KEY_TEXT[r.keySource] ?? r.keySource));

function showRole(r: JwtRole): void {
  printFields([
    ['name', r.name],
    ['issuer', r.issuer],
    ['audience', r.audience],
    ['subject', r.boundSubject],
    ['claims', claimText(r.boundClaims ?? {})],
    ['required', (r.requiredClaims ?? []).join(' ')],
    ['keys', keyText(r)],
    ['scopes', r.scopes.join(' ')],
    ['ttl', r.ttl],
    ['created', `${shortTime(r.createdAt)}${r.createdBy ? ` by ${r.createdBy}` : ''}`],
  ]);
}

const create: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create <name>',
  describe: 'Create a JWT role: which JWTs may log in, and the grants and lifetime of their tokens',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'Role name, given at login (--role NAME)' })
      .option('issuer', {
        type: 'string',
        demandOption: true,
        describe: 'Expected iss claim, exactly (e.g. https://token.actions.githubusercontent.com)',
      })
      .option('audience', { type: 'string', demandOption: true, describe: 'Expected aud claim (e.g. hush)' })
      .option('claim', {
        type: 'string',
        array: true,
        describe: 'NAME=VALUE the JWT must carry (* globs; repeat a NAME for any of several values)',
      })
      .option('sub', { type: 'string', describe: 'Pattern the sub claim must match (* globs)' })
      .option('require-claim', { type: 'string', array: true, describe: 'Claim that must be present (repeatable)' })
      .option('scope', {
        alias: 's',
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Grant of the issued tokens: read:P/E, list:P/E, write:P/E, admin:P (repeatable)',
      })
      .option('ttl', { type: 'string', default: '15m', describe: "Lifetime of the issued tokens (never past the JWT's exp)" })
      .option('jwks-url', {
        type: 'string',
        describe: "The issuer's JWKS URL, fetched by the server [default: none of these three: OIDC discovery from " + '--issuer]',
      })
      .option('jwks-file', {
        type: 'string',
        describe: 'A JWKS document, read here and stored with the role (kubectl get --raw /openid/v1/jwks)',
      })
      .option('public-key-file', { type: 'string', describe: 'A PEM public key, read here and stored with the role' })
      .example(
        'hush auth roles create deploy --issuer https://token.actions.githubusercontent.com --audience ' +
          'hush --claim repository=acme/api --claim ref=refs/heads/main --scope read:api/prod --ttl 15m ' +
          '--jwks-url https://token.actions.githubusercontent.com/.well-known/jwks',
        'GitHub Actions on main',
      )
      .example(
        'hush auth roles create k8s-api --issuer https://kubernetes.default.svc --audience hush --sub ' +
          '"system:serviceaccount:prod:api" --scope read:api/prod --jwks-file jwks.json',
        'a Kubernetes service account',
      ),
  handler: async (argv) => {
    const scopes = list1(argv.scope);
    if (!scopes.length) throw usage('give at least one --scope');
    const requiredClaims = list1(argv['require-claim']);
    const boundClaims = parseClaims(argv.claim);
    const input: JwtRoleCreateInput = {
      name: argv.name,
      issuer: argv.issuer,
      audience: argv.audience,
      scopes,
      ttl: argv.ttl,
      ...(Object.keys(boundClaims).length ? { boundClaims } : {}),
      ...(argv.sub !== undefined ? { boundSubject: argv.sub } : {}),
      ...(requiredClaims.length ? { requiredClaims } : {}),
      ...keySource(argv),
    };
    const { client } = await connect(argv);
    const r = await client.auth.roles.create(input);
    emit(argv, r, () => {
      say(`Created JWT role ${r.name}: tokens with ${r.scopes.join(' ')} for ${r.ttl}.`);
      showRole(r);
    });
  },
};

const list: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List the JWT roles you may manage',
  handler: async (argv) => {
    const { client } = await connect(argv);
    const roles = await client.auth.roles.list();
    emit(argv, roles, () =>
      printTable(
        roles.map((r) => ({
          name: r.name,
          issuer: r.issuer,
          audience: r.audience,
          match: [r.boundSubject ? `sub=${r.boundSubject}` : '', claimText(r.boundClaims ?? {})].filter(Boolean).join(' '),
          scopes: r.scopes.join(' '),
          ttl: r.ttl,
          keys: r.keySource,
        })),
        ['name', 'issuer', 'audience', 'match', 'scopes', 'ttl', 'keys'],
      ),
    );
  },
};

interface NameArgs extends GlobalArgs {
  name: string;
}

const get: CommandModule<GlobalArgs, NameArgs> = {
  command: 'get <name>',
  aliases: ['show'],
  describe: 'Show one JWT role',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const r = await client.auth.roles.get(argv.name);
    emit(argv, r, () => showRole(r));
  },
};

const del: CommandModule<GlobalArgs, NameArgs> = {
  command: 'delete <name>',
  aliases: ['rm'],
  describe: 'Delete a JWT role (tokens it issued stay valid until they expire; hush tokens revoke ends them)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const r = await client.auth.roles.delete(argv.name);
    emit(argv, r, () => say(`Deleted JWT role ${r.name}.`));
  },
};

const roles: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'roles',
  describe: 'JWT roles: create, list, get, delete',
  builder: (y) =>
    y.command(create).command(list).command(get).command(del).demandCommand(1, 'name a roles command: create, list, get, delete'),
  handler: () => undefined,
};

export const authCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'auth',
  describe: 'Machine identity: JWT roles that CI jobs and workloads log in with (docs/machine-identity.md)',
  builder: (y) => y.command(roles).demandCommand(1, 'name an auth command: roles'),
  handler: () => undefined,
};
