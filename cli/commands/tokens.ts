import { closeSync, constants as fsConstants, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import type { TokenInfo } from 'hush-vault-sdk';
import { connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, note, printTable, say, shortTime } from '../output.js';

interface CreateArgs extends GlobalArgs {
  name: string;
  scope: string[];
  ttl?: string;
  cidr?: string[];
  description?: string;
  out?: string;
}

const list1 = (v: string[] | undefined) =>
  v
    ?.flatMap((s) => String(s).split(','))
    .map((s) => s.trim())
    .filter(Boolean);

const create: CommandModule<GlobalArgs, CreateArgs> = {
  command: 'create',
  describe: 'Create a token within your own grants; prints the token once (only the token on stdout)',
  builder: (y) =>
    y
      .option('name', { type: 'string', demandOption: true, describe: 'Label shown in listings and the audit log' })
      .option('scope', {
        alias: 's',
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Grant: read:P/E, list:P/E, write:P/E, admin:P, audit, backup, metrics, root (repeatable)',
      })
      .option('ttl', { type: 'string', describe: "Lifetime, e.g. 1h, 30d, 1y [default: the server's]" })
      .option('cidr', { type: 'string', array: true, describe: 'Only accept the token from these networks (repeatable)' })
      .option('description', { type: 'string', describe: 'Free text' })
      .option('out', {
        type: 'string',
        describe: 'Write the token to this new file (mode 0600; refused if it exists or is a symlink) instead of stdout',
      })
      .example(
        'hush tokens create --name ci-api --scope read:api/prod --ttl 30d --out ci.token',
        'the token goes to ci.token (0600), details to stderr',
      )
      .example('hush tokens create --name deployer --scope write:api/staging --scope read:api/prod --cidr 10.0.0.0/8', ''),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const scopes = list1(argv.scope) ?? [];
    if (!scopes.length) throw new CliError('give at least one --scope', EXIT.usage);
    const cidrs = list1(argv.cidr);
    // The file first (0600, O_EXCL|O_NOFOLLOW): a name that is taken fails before a token exists.
    const out = argv.out !== undefined ? openTokenFile(argv.out) : null;
    let t;
    try {
      t = await client.tokens.create({
        name: argv.name,
        scopes,
        ...(argv.ttl !== undefined ? { ttl: argv.ttl } : {}),
        ...(cidrs?.length ? { cidrs } : {}),
        ...(argv.description !== undefined ? { description: argv.description } : {}),
      });
    } catch (e) {
      out?.discard();
      throw e;
    }
    if (out) {
      out.write(`${t.token}\n`);
      const { token: _shown, ...rest } = t;
      emit(argv, { ...rest, file: out.path }, () => {
        const expires = t.expiresAt ? `, expires ${shortTime(t.expiresAt)}` : ', never expires';
        const from = t.cidrs.length ? `, from ${t.cidrs.join(' ')}` : '';
        note(`Created token ${t.name} (${t.id}): ${t.scopes.join(' ')}${expires}${from}.`);
        note(`The token is in ${out.path} (mode 0600); it is not shown anywhere else.`);
      });
      return;
    }
    emit(argv, t, () => {
      // Details go to stderr so that `> file` captures only the token.
      const expires = t.expiresAt ? `, expires ${shortTime(t.expiresAt)}` : ', never expires';
      note(`Created token ${t.name} (${t.id}): ${t.scopes.join(' ')}${expires}${t.cidrs.length ? `, from ${t.cidrs.join(' ')}` : ''}.`);
      note('This is the only time the token is shown; store it now.');
      say(t.token);
    });
  },
};

interface ListArgs extends GlobalArgs {
  all?: boolean;
  name?: string;
}

const row = (t: TokenInfo) => ({
  id: t.id,
  name: t.name,
  scopes: t.scopes.join(' '),
  expires: shortTime(t.expiresAt) ?? 'never',
  'last used': shortTime(t.lastUsedAt),
  parent: t.parentId,
  revoked: shortTime(t.revokedAt),
});

const list: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  aliases: ['ls'],
  describe: 'List this token and the tokens it created (root sees all)',
  builder: (y) =>
    y
      .option('all', { alias: 'a', type: 'boolean', describe: 'Include revoked tokens' })
      .option('name', { type: 'string', describe: 'Only tokens with this name' }),
  handler: async (argv) => {
    const { client } = await connect(argv);
    const tokens = await client.tokens.list({ ...(argv.all ? { includeRevoked: true } : {}), ...(argv.name ? { name: argv.name } : {}) });
    emit(argv, tokens, () =>
      printTable(tokens.map(row), ['id', 'name', 'scopes', 'expires', 'last used', 'parent', ...(argv.all ? ['revoked'] : [])]),
    );
  },
};

interface RevokeArgs extends GlobalArgs {
  which: string;
}

const TOKEN_ID = /^tok_[0-9A-Za-z]{1,40}$/;

const revoke: CommandModule<GlobalArgs, RevokeArgs> = {
  command: 'revoke <which>',
  describe: 'Revoke a token (by id, or by name when one live token has it) and every token created from it',
  builder: (y) =>
    y
      .positional('which', { type: 'string', demandOption: true, describe: 'Token id (tok_...) or name' })
      .example('hush tokens revoke tok_3kY0mB1pQx7Zr2VaLw9T', '')
      .example('hush tokens revoke ci-deploy', 'by name; refused when several live tokens share it'),
  handler: async (argv) => {
    const { client } = await connect(argv);
    let id = String(argv.which);
    // An empty name (an unset "$NAME" in a script) must never pick a token.
    if (id.trim() === '') throw new CliError('give the id or the name of the token to revoke (an empty name matches nothing)', EXIT.usage);
    if (id.length > 128) throw new CliError('a token name has at most 128 characters', EXIT.usage);
    if (!TOKEN_ID.test(id)) {
      const named = await client.tokens.list({ name: id });
      if (named.length === 0)
        throw new CliError(
          `no live token has the id or name "${id.slice(0, 80)}" (hush tokens list shows the ones you can see)`,
          EXIT.notFound,
          'token_not_found',
        );
      if (named.length > 1) {
        const rows = named.map((t) => `${t.id} (scopes ${t.scopes.join(' ')}, created ${shortTime(t.createdAt)})`).join('; ');
        throw new CliError(
          `${named.length} live tokens are named "${id}": ${rows}; revoke one by its id`,
          EXIT.usage,
          'token_name_ambiguous',
        );
      }
      id = named[0].id;
    }
    const r = await client.tokens.revoke(id);
    const others = r.revoked.filter((id) => id !== r.id);
    emit(argv, r, () => say(`Revoked ${r.id}${others.length ? ` and ${others.length} descendant token(s): ${others.join(', ')}` : ''}.`));
  },
};

export const tokensCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'tokens',
  aliases: ['token'],
  describe: 'Create, list and revoke API tokens',
  builder: (y) => y.command(create).command(list).command(revoke).demandCommand(1, 'name a tokens command: create, list, revoke'),
  handler: () => undefined,
};

/**
 * A new file for a token: created here with O_CREAT|O_EXCL|O_NOFOLLOW and
 * mode 0600 (never an existing file, never through a symlink), written and
 * fsynced once the token exists, removed again if it is never written.
 */
function openTokenFile(file: string): { path: string; write(text: string): void; discard(): void } {
  const path = resolve(file);
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST'
        ? 'it already exists (a token file is never overwritten; choose a new name or remove it)'
        : code === 'ELOOP'
          ? 'it is a symbolic link'
          : code === 'ENOENT'
            ? 'its directory does not exist'
            : code === 'EACCES'
              ? 'permission denied'
              : `it cannot be created (${code})`;
    throw new CliError(`--out ${path}: ${why}; no token was created`, code === 'EEXIST' ? EXIT.conflict : EXIT.usage);
  }
  return {
    path,
    write(text) {
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    discard() {
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        /* gone */
      }
    },
  };
}
