import type { Argv, CommandModule } from 'yargs';
import { describeSettings, loadConfig } from '../../vault/config.js';
import { CliError, EXIT } from '../output.js';
import { operatorClientCommands } from './operator.js';

/** Flags shared by `server` and `init`: every row of the config table. */
export function serverOptions<T>(y: Argv<T>): Argv<T> {
  for (const s of describeSettings()) {
    const name = s.flag.slice(2);
    const isBool = s.boolean;
    const isList = name === 'backup-recipient' || name === 'trust-proxy';
    y.option(name, {
      describe: `${s.doc} [env ${s.env}]`,
      type: isBool ? 'boolean' : isList ? 'array' : 'string',
      group: 'Server settings:',
    });
  }
  return y;
}

export const serverCommand: CommandModule = {
  command: 'server',
  describe: 'Run the Hush server (initialises an empty data dir on first start)',
  builder: (y) => serverOptions(y),
  handler: async (argv) => {
    // Everything the server creates (database, WAL, backups, audit file) is private to its user.
    process.umask(0o077);
    const cfg = loadConfig(argv);
    const { buildServer } = await import('../../vault/server.js');
    const server = await buildServer(cfg);
    if (server.init) {
      process.stderr.write(
        `\nHush initialised a new vault in ${cfg.databaseUrl ? 'the configured database' : cfg.dataDir}.\n` +
          `Root token (shown once, store it now):\n\n  ${server.init.rootToken}\n\n`,
      );
    }
    if (server.masterKeySource === 'data-dir' || server.init?.masterKeySource === 'generated') {
      process.stderr.write(
        'WARNING: the master key is stored beside the database (master.key in the data dir).\n' +
          ('         This is for development only: anyone with a copy of the data dir can read every ' + 'secret.\n') +
          '         For production set HUSH_MASTER_KEY_FILE to a key kept elsewhere; see docs/keys.md.\n',
      );
    }
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      server.app.log.info({ signal: sig }, 'shutting down: finishing in-flight requests');
      server.close().then(
        () => process.exit(0),
        (e) => {
          process.stderr.write(`hush: error during shutdown: ${(e as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const address = await server.listen();
    process.stderr.write(`hush server listening on ${address} (storage: ${server.container.storage})\n`);
    // The server runs until a signal arrives.
    await new Promise(() => undefined);
  },
};

interface SealFlags {
  seal?: string;
  shares?: number;
  threshold?: number;
  'pgp-keys'?: string;
  'passphrase-file'?: string;
  json?: boolean;
}

/** The seal flags of init and rekey. */
function sealOptions<T>(y: Argv<T>, forRekey: boolean): Argv<T> {
  return y
    .option('seal', {
      type: 'string',
      choices: forRekey ? ['shamir', 'passphrase'] : ['file', 'shamir', 'passphrase'],
      describe: forRekey
        ? 'The new seal [default: the current one]'
        : 'How the master key is kept: file (master.key or --master-key-file, the default), shamir (unseal ' +
          'shares), passphrase (Argon2id)',
    })
    .option('shares', { type: 'number', describe: 'shamir: how many unseal shares to make [default: 5]' })
    .option('threshold', { type: 'number', describe: 'shamir: how many shares open the vault [default: 3]' })
    .option('pgp-keys', {
      type: 'string',
      describe: 'shamir: comma-separated armored OpenPGP public key files, one per share; each share is printed ' + 'encrypted to its key',
    })
    .option(forRekey ? 'new-passphrase-file' : 'passphrase-file', {
      type: 'string',
      describe: 'passphrase: file holding the new passphrase (else prompted twice, without echo)',
    })
    .option('json', { type: 'boolean', describe: 'machine output' });
}

async function newPassphrase(file: string | undefined, flag: string): Promise<string> {
  const { readSecretFile } = await import('./operator.js');
  if (file) return readSecretFile(file, flag);
  const { readHidden } = await import('../prompt.js');
  const a = await readHidden('New passphrase (not echoed, at least 12 characters): ');
  const b = await readHidden('The same passphrase again: ');
  if (a !== b) throw new CliError('the two passphrases differ; nothing was changed', EXIT.usage);
  return a;
}

/** What the new seal is: checked before anything is written. */
async function sealPlan(
  argv: SealFlags & Record<string, unknown>,
  current: { type: string; shares: number; threshold: number } | null,
  passFlag: string,
) {
  const type = argv.seal ?? current?.type ?? 'file';
  const isInt = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isInteger(v));
  if (!isInt(argv.shares) || !isInt(argv.threshold)) throw new CliError('--shares and --threshold must be whole numbers', EXIT.usage);
  if (type !== 'shamir' && (argv.shares !== undefined || argv.threshold !== undefined || argv['pgp-keys'])) {
    throw new CliError('--shares, --threshold and --pgp-keys go with --seal shamir', EXIT.usage);
  }
  if (type === 'file') return { type: 'file' as const };
  if (type === 'passphrase') {
    const passphrase = await newPassphrase(argv[passFlag.slice(2)] as string | undefined, passFlag);
    // Checked before anything is opened or written.
    const { MIN_PASSPHRASE_CHARS, MAX_PASSPHRASE_BYTES } = await import('../../vault/crypto/seal.js');
    if ([...passphrase].length < MIN_PASSPHRASE_CHARS)
      throw new CliError(`the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`, EXIT.usage);
    if (Buffer.byteLength(passphrase) > MAX_PASSPHRASE_BYTES)
      throw new CliError(`the passphrase must be at most ${MAX_PASSPHRASE_BYTES} bytes`, EXIT.usage);
    return { type: 'passphrase' as const, passphrase };
  }
  const shares = argv.shares ?? (current?.type === 'shamir' ? current.shares : 5);
  const threshold = argv.threshold ?? (current?.type === 'shamir' ? Math.min(current.threshold, shares) : Math.min(3, shares));
  if (threshold < 2 || shares < threshold || shares > 255)
    throw new CliError(`--shares ${shares} --threshold ${threshold}: need 2 <= threshold <= shares <= 255`, EXIT.usage);
  const recipients = [];
  if (argv['pgp-keys']) {
    const files = String(argv['pgp-keys'])
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    if (files.length !== shares)
      throw new CliError(`--pgp-keys names ${files.length} key(s) for ${shares} shares: give exactly one key per share`, EXIT.usage);
    const { readFileSync } = await import('node:fs');
    const { readRecipientKey } = await import('../../vault/backup/pgp.js');
    for (const f of files) {
      let armored: string;
      try {
        armored = readFileSync(f, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read --pgp-keys file ${f}: ${(e as NodeJS.ErrnoException).code}`, EXIT.usage);
      }
      try {
        recipients.push(await readRecipientKey(armored));
      } catch (e) {
        throw new CliError(`--pgp-keys ${f}: ${(e as Error).message}`, EXIT.usage);
      }
    }
    const seen = new Set<string>();
    for (const [i, r] of recipients.entries()) {
      if (seen.has(r.fingerprint))
        throw new CliError(
          `--pgp-keys names key ${r.fingerprint} twice (${files[i]}): one holder would get two shares; ` +
            `give each share its own holder's key`,
          EXIT.usage,
        );
      seen.add(r.fingerprint);
    }
  }
  return { type: 'shamir' as const, shares, threshold, recipients };
}

/** Shares as printed: plain, or each encrypted to its holder's key. */
async function shareOutput(shares: string[], recipients: { fingerprint: string }[]): Promise<{ text: string; to: string | null }[]> {
  if (!recipients.length) return shares.map((text) => ({ text, to: null }));
  const { encryptTextTo } = await import('../../vault/backup/pgp.js');
  return Promise.all(
    shares.map(async (sh, i) => ({ text: await encryptTextTo(sh, recipients[i] as never), to: recipients[i].fingerprint })),
  );
}

function printShares(out: { text: string; to: string | null }[], threshold: number): void {
  process.stdout.write(`Unseal shares (shown once: give each to a different person; any ${threshold} open the vault):\n\n`);
  out.forEach((s, i) => {
    if (s.to) process.stdout.write(`Share ${i + 1}, encrypted to ${s.to} (gpg --decrypt):\n${s.text.trimEnd()}\n\n`);
    else process.stdout.write(`  Share ${i + 1}: ${s.text}\n`);
  });
  if (!out[0]?.to) process.stdout.write('\n');
}

const operatorInitCommand: CommandModule = {
  command: 'init',
  describe:
    'Create a vault: the data dir and database, a root token (printed once), and the seal: a ' +
    'master.key file (default), unseal shares, or a passphrase',
  builder: (y) =>
    sealOptions(serverOptions(y), false)
      .example('hush operator init --seal shamir --shares 5 --threshold 3', 'print 5 unseal shares; the master key is never written')
      .example('hush operator init --seal passphrase --passphrase-file /run/secrets/hush-pass', ''),
  handler: async (argv) => {
    process.umask(0o077);
    const cfg = loadConfig(argv);
    const plan = await sealPlan(argv, null, '--passphrase-file');
    const { initVault, openConfiguredDb } = await import('../../vault/vault.js');
    const { createLogger } = await import('../../vault/server.js');
    const opened = openConfiguredDb(cfg);
    try {
      const r = await initVault(
        cfg,
        opened,
        createLogger('silent'),
        plan.type === 'shamir' ? { type: 'shamir', shares: plan.shares, threshold: plan.threshold } : plan,
      );
      const shares = r.seal?.type === 'shamir' ? await shareOutput(r.seal.shares, plan.type === 'shamir' ? plan.recipients : []) : [];
      if (argv.json) {
        process.stdout.write(
          JSON.stringify({
            rootToken: r.rootToken,
            rootTokenId: r.rootTokenId,
            vaultId: r.vaultId,
            seal: r.seal?.type ?? 'file',
            masterKeyFile: r.masterKeyFile,
            ...(r.seal?.type === 'shamir'
              ? {
                  shares: shares.map((s) => s.text),
                  threshold: r.seal.threshold,
                  ...(shares[0]?.to ? { shareKeys: shares.map((s) => s.to) } : {}),
                }
              : {}),
          }) + '\n',
        );
        return;
      }
      process.stdout.write(
        `Initialised vault ${r.vaultId} (seal: ` +
          `${r.seal?.type ?? 'file'}${r.seal?.type === 'shamir' ? `, ${r.seal.threshold} of ${r.seal.shares.length} shares` : ''}).\nRoot ` +
          `token (shown once, store it now):\n\n  ${r.rootToken}\n\n`,
      );
      if (r.seal?.type === 'shamir') printShares(shares, r.seal.threshold);
      if (r.seal)
        process.stdout.write(
          `The master key was not written anywhere. The server starts sealed: open it with hush operator ` +
            `unseal${r.seal.type === 'shamir' ? `, once per share, ${r.seal.threshold} times` : ''} ` +
            `(docs/keys.md).\n`,
        );
      if (r.masterKeySource === 'generated')
        process.stdout.write(
          `Master key written to ${r.masterKeyFile} (mode 0600). Development only: move it off this disk ` +
            `for production (docs/keys.md).\n`,
        );
    } catch (e) {
      throw CliError.from(e, EXIT.usage);
    } finally {
      await opened.db.destroy();
    }
  },
};

const operatorRekeyCommand: CommandModule = {
  command: 'rekey',
  describe:
    'New unseal shares (or threshold), or a new passphrase, opened with a quorum of the current ones; ' +
    'also moves a file-sealed vault to shares or a passphrase. No data is re-encrypted.',
  builder: (y) =>
    sealOptions(serverOptions(y), true)
      .option('share-file', {
        type: 'string',
        array: true,
        describe: 'File holding one current share (repeat; else prompted without echo)',
      })
      .option('passphrase-file', { type: 'string', describe: 'File holding the current passphrase (else prompted)' })
      .example('hush operator rekey --shares 3 --threshold 2 --share-file s1 --share-file s2 --share-file s3', ''),
  handler: async (argv) => {
    process.umask(0o077);
    const cfg = loadConfig(argv);
    const { rekeyVault } = await import('../../vault/rekey.js');
    const { createLogger } = await import('../../vault/server.js');
    const { readSecretFile } = await import('./operator.js');
    const { readHidden } = await import('../prompt.js');
    try {
      const r = await rekeyVault(cfg, createLogger('silent'), {
        shares: async (threshold, given) => {
          const files = (argv['share-file'] as string[] | undefined) ?? [];
          if (files.length) return Promise.all(files.map((f) => readSecretFile(f, '--share-file')));
          const out: string[] = [];
          for (let i = given; i < threshold; i++)
            out.push(await readHidden(`Current unseal share ${i + 1} of ${threshold} (not echoed): `));
          return out;
        },
        passphrase: async () =>
          argv['passphrase-file']
            ? readSecretFile(argv['passphrase-file'] as string, '--passphrase-file')
            : readHidden('Current passphrase (not echoed): '),
        plan: (current) => sealPlan(argv, current, '--new-passphrase-file'),
      });
      const shares = r.shares ? await shareOutput(r.shares, r.recipients) : [];
      if (argv.json) {
        process.stdout.write(
          JSON.stringify({
            seal: r.type,
            ...(r.shares
              ? {
                  shares: shares.map((s) => s.text),
                  threshold: r.threshold,
                  ...(shares[0]?.to ? { shareKeys: shares.map((s) => s.to) } : {}),
                }
              : {}),
            from: r.from,
            removedKeyFile: r.removedKeyFile,
          }) + '\n',
        );
        return;
      }
      const now = r.type === 'shamir' ? `${r.threshold} of ${r.shares!.length} unseal shares` : 'a passphrase';
      const old =
        r.from === 'shamir'
          ? 'shares no longer open'
          : r.from === 'passphrase'
            ? 'passphrase no longer opens'
            : 'key file is no longer needed to open';
      process.stdout.write(`Rekeyed: the vault is now sealed with ${now} (was: ${r.from}). The old ${old} it.\n\n`);
      if (r.shares) printShares(shares, r.threshold);
      if (r.removedKeyFile) process.stdout.write(`Removed ${r.removedKeyFile}: the master key is no longer kept beside the database.\n`);
      if (r.from === 'file') {
        process.stdout.write(
          'The master key itself is unchanged: any copy of the old key file (or of HUSH_MASTER_KEY) still ' +
            'decrypts this database. To retire every copy, unseal a server and run hush keys rotate-master ' +
            '(the new key is made on the server and never written down).\n',
        );
        if (!r.removedKeyFile)
          process.stdout.write(
            "Remove --master-key-file / HUSH_MASTER_KEY from the servers' settings: a sealed vault refuses " + 'to start with it set.\n',
          );
      }
      process.stdout.write(
        'Running servers keep serving; each asks for the new shares or passphrase the next time it starts ' + 'sealed.\n',
      );
    } catch (e) {
      throw CliError.from(e, EXIT.usage);
    }
  },
};

export const operatorCommand: CommandModule = {
  command: 'operator',
  describe: 'Operator tasks: init, unseal, seal, seal-status, rekey',
  builder: (y) => {
    let out = y.command(operatorInitCommand).command(operatorRekeyCommand);
    for (const c of operatorClientCommands) out = out.command(c);
    return out.demandCommand(1, 'name an operator command: init, unseal, seal, seal-status, rekey');
  },
  handler: () => undefined,
};
