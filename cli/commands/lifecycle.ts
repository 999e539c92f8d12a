import type { CommandModule } from 'yargs';
import { checkVarName, connect, target, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, note, printTable, say, shortTime, warn } from '../output.js';

/** `hush secrets generate`, `policy` and `stale` (docs/lifecycle.md). */
const CHARSETS = ['alnum', 'hex', 'base64url', 'words'] as const;

interface GenerateArgs extends GlobalArgs {
  key: string;
  length?: number;
  charset: (typeof CHARSETS)[number];
  'rotate-every'?: string;
  'expires-at'?: string;
  auto?: boolean;
  show?: boolean;
}

const policyText = (p: { rotateEvery: string | null; expiresAt: string | null; auto: boolean }) =>
  [
    p.rotateEvery ? `rotates every ${p.rotateEvery}${p.auto ? ' (automatically)' : ' (reminder)'}` : '',
    p.expiresAt ? `expires ${p.expiresAt}` : '',
  ]
    .filter(Boolean)
    .join(', ') || 'no rotation policy';

export const generate: CommandModule<GlobalArgs, GenerateArgs> = {
  command: 'generate <key>',
  describe: 'Store a random value made by the server (CSPRNG); printed only with --show',
  builder: (y) =>
    y
      .positional('key', { type: 'string', demandOption: true })
      .option('charset', {
        choices: CHARSETS,
        default: 'alnum' as const,
        describe: 'alnum, hex, base64url, or words (BIP-39 English list, joined by "-")',
      })
      .option('length', { type: 'number', describe: 'Characters, or words for --charset words [default: 32 characters, 6 words]' })
      .option('rotate-every', { type: 'string', describe: 'Rotation period, such as 90d' })
      .option('expires-at', { type: 'string', describe: 'The value expires at this ISO date/time' })
      .option('auto', { type: 'boolean', describe: 'The server writes a new generated value when --rotate-every runs out' })
      .option('show', { type: 'boolean', describe: 'Print the generated value' })
      .example('hush secrets generate SESSION_SECRET --length 48 --charset base64url', '')
      .example('hush secrets generate DB_PASS --rotate-every 30d --auto', 'rotated by the server every 30 days'),
  handler: async (argv) => {
    if (argv.length !== undefined && !Number.isInteger(argv.length)) throw new CliError('--length must be a whole number', EXIT.usage);
    if (argv.auto && !argv['rotate-every']) throw new CliError('--auto needs --rotate-every (such as 90d)', EXIT.usage);
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const key = checkVarName(argv.key);
    const r = await client.secrets.generate(project, env, key, {
      charset: argv.charset,
      ...(argv.length !== undefined ? { length: argv.length } : {}),
      ...(argv['rotate-every'] !== undefined ? { rotateEvery: argv['rotate-every'] } : {}),
      ...(argv['expires-at'] !== undefined ? { expiresAt: argv['expires-at'] } : {}),
      ...(argv.auto !== undefined ? { auto: argv.auto } : {}),
      ...(argv.show ? { show: true } : {}),
    });
    if (argv.json) {
      emit(argv, { project, env, ...r }, () => undefined);
      return;
    }
    const line =
      `Generated ${key} in ${project}/${env} (version ${r.version}, ${r.length} ` +
      `${r.charset === 'words' ? 'words' : `${r.charset} characters`}, ${r.bits} bits; ` +
      `${policyText(r.policy)}).`;
    // With --show the value alone goes to stdout (for a pipe), the summary to stderr.
    if (r.value === undefined) {
      say(line);
      return;
    }
    note(line);
    process.stdout.write(r.value + (process.stdout.isTTY ? '\n' : ''));
  },
};

interface PolicyArgs extends GlobalArgs {
  key: string;
  'rotate-every'?: string;
  'expires-at'?: string;
  auto?: boolean;
  clear?: boolean;
}

export const policy: CommandModule<GlobalArgs, PolicyArgs> = {
  command: 'policy <key>',
  describe: 'Show or set the rotation policy of a secret (--rotate-every, --expires-at; "none" clears one)',
  builder: (y) =>
    y
      .positional('key', { type: 'string', demandOption: true })
      .option('rotate-every', { type: 'string', describe: 'Rotation period, such as 90d; "none" clears it' })
      .option('expires-at', { type: 'string', describe: 'The current value expires at this ISO date/time; "none" clears it' })
      .option('auto', { type: 'boolean', describe: 'Generated secrets only: the server rotates it (--no-auto: reminders only)' })
      .option('clear', { type: 'boolean', describe: 'Remove the rotation period and the expiry' })
      .example('hush secrets policy DB_PASS --rotate-every 90d', 'remind every 90 days (secret.rotation_due)')
      .example('hush secrets policy API_KEY --expires-at 2027-01-31', ''),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const { project, env } = target(conn);
    const key = checkVarName(argv.key);
    const none = (v: string | undefined) => (v === undefined ? undefined : v.trim().toLowerCase() === 'none' ? null : v);
    const input = argv.clear
      ? { rotateEvery: null, expiresAt: null, auto: false }
      : {
          ...(argv['rotate-every'] !== undefined ? { rotateEvery: none(argv['rotate-every']) } : {}),
          ...(argv['expires-at'] !== undefined ? { expiresAt: none(argv['expires-at']) } : {}),
          ...(argv.auto !== undefined ? { auto: argv.auto } : {}),
        };
    if (argv.clear && (argv['rotate-every'] !== undefined || argv['expires-at'] !== undefined))
      throw new CliError('--clear cannot be combined with --rotate-every or --expires-at', EXIT.usage);
    const r = Object.keys(input).length
      ? await client.secrets.setPolicy(project, env, key, input)
      : await client.secrets.policy(project, env, key);
    emit(argv, { project, env, ...r }, () =>
      say(`${key} in ${project}/${env} (version ${r.version}): ` + `${policyText(r)}${r.dueAt ? `; due ${r.dueAt}` : ''}.`),
    );
  },
};

export const stale: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'stale',
  describe: 'List secrets overdue for rotation, or whose value expired, across every env the token may list',
  handler: async (argv) => {
    const { client } = await connect(argv);
    const list = await client.secrets.stale();
    emit(argv, { secrets: list }, () => {
      if (list.length === 0) {
        say('No overdue secrets.');
        return;
      }
      printTable(
        list.map((s) => ({
          secret: `${s.project}/${s.env}/${s.key}`,
          due: shortTime(s.dueAt),
          reason: s.reason === 'expiry' ? 'expired' : `every ${s.rotateEvery}`,
          action: s.auto ? 'auto' : 'reminder',
          updated: shortTime(s.updatedAt),
        })),
        ['secret', 'due', 'reason', 'action', 'updated'],
      );
      if (list.some((s) => s.auto)) warn('auto-rotated secrets listed here are rotated by the server at its next check');
    });
  },
};
