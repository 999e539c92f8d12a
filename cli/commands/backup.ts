import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { CliError, EXIT, printJson } from '../output.js';
import { progress, type Progress } from '../progress.js';

/**
 * `hush backup create|verify|restore`. `create` talks to the server through
 * the SDK only; `verify` and `restore` work on local files and need no
 * server (restore writes straight into the target data dir or database).
 */

const BACKUP_CODES = new Set([
  'backup_key_invalid',
  'backup_decrypt_failed',
  'backup_corrupt',
  'backup_signature_invalid',
  'backup_incomplete',
]);

/** One line, with the stable code at the end so scripts can grep for it. */
function backupFailure(e: unknown): CliError {
  if (e instanceof CliError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : undefined;
  if (code && BACKUP_CODES.has(code)) return new CliError(`${String(err.message).split('\n')[0]} (${code})`, EXIT.error, code);
  if (code === 'restore_target_not_empty' || code === 'restore_target_unsafe')
    return new CliError(`${String(err.message).split('\n')[0]} (${code})`, EXIT.conflict, code);
  const c = CliError.from(e);
  return code && !c.message.includes(code) ? new CliError(`${c.message} (${code})`, c.exitCode, code) : c;
}

function readArmored(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${flag} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
  }
}

async function passphraseFrom(path: string, flag: string): Promise<string> {
  const { readFirstLine } = await import('../../common/files.js');
  let first: string;
  try {
    first = readFirstLine(path);
  } catch (e) {
    throw new CliError(`cannot read ${flag} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
  }
  if (first === '') throw new CliError(`${flag}: passphrase file ${path} is empty (its first line is the passphrase)`, EXIT.usage);
  return first;
}

const list = (v: unknown): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Counts the bytes that pass, showing "label, bytes so far" on the CLI's one progress spinner (cli/progress.ts). */
function byteMeter(p: Progress, label: string): { meter: Transform; bytes: () => number } {
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      p.update(`${label} ${human(bytes)}`);
      cb(null, chunk);
    },
  });
  return { meter, bytes: () => bytes };
}

type Args = ArgumentsCamelCase<Record<string, unknown>>;

function keyOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('identity', {
      type: 'string',
      array: true,
      describe: 'Armored private key file that can decrypt the backup (gpg --armor --export-secret-keys FPR); ' + 'repeatable',
    })
    .option('identity-passphrase-file', { type: 'string', describe: 'File whose first line unlocks a passphrase-protected --identity key' })
    .option('passphrase-file', { type: 'string', describe: 'File whose first line is the backup passphrase' })
    .option('signer', {
      type: 'string',
      array: true,
      describe: 'Armored public key file of an accepted signer; the backup must carry a valid signature by one of ' + 'them',
    });
}

async function decryptKeysFrom(argv: Args) {
  const identities = list(argv.identity);
  const pf = argv.passphraseFile as string | undefined;
  if (identities.length === 0 && !pf) throw new CliError('give --identity KEY.asc or --passphrase-file FILE', EXIT.usage);
  const idPass = argv.identityPassphraseFile
    ? await passphraseFrom(argv.identityPassphraseFile as string, '--identity-passphrase-file')
    : undefined;
  const signers = list(argv.signer);
  return {
    identities: identities.map((p) => ({ armored: readArmored(p, '--identity'), passphrase: idPass })),
    passphrase: pf ? await passphraseFrom(pf, '--passphrase-file') : undefined,
    verifyKeys: signers.length ? signers.map((p) => readArmored(p, '--signer')) : undefined,
  };
}

function backupFileArg(argv: Args): string {
  const file = resolve(String(argv.file));
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new CliError(`cannot read backup file ${file}: ${(e as NodeJS.ErrnoException).code}`, EXIT.usage);
  }
  if (!st.isFile()) throw new CliError(`backup file ${file} is not a regular file`, EXIT.usage);
  return file;
}

const countsLine = (c: { [k in 'projects' | 'envs' | 'secrets' | 'versions' | 'tokens' | 'audit']?: number }) =>
  `${c.projects} projects, ${c.envs} environments, ${c.secrets} secrets, ${c.versions} versions, ` +
  `${c.tokens} tokens, ${c.audit} audit events`;

export const createSubcommand: CommandModule = {
  command: 'create',
  describe:
    'Ask the server for an encrypted backup (token with the backup grant) and write it to --out; ' + '--json prints {file, bytes, counts}',
  builder: (y) =>
    y
      .option('recipient', {
        type: 'string',
        array: true,
        describe: 'Armored OpenPGP public key file to encrypt to (gpg --armor --export FPR); repeatable',
      })
      .option('passphrase-file', {
        type: 'string',
        describe: "Encrypt with the passphrase on this file's first line (also or instead of recipients)",
      })
      .option('sign-key', { type: 'string', describe: 'Armored private key file to sign the backup with' })
      .option('sign-passphrase-file', { type: 'string', describe: 'File whose first line unlocks --sign-key' })
      .option('out', { type: 'string', demandOption: true, describe: 'Backup file to write (mode 0600, written atomically)' })
      .option('force', { type: 'boolean', describe: 'Replace --out if it exists' })
      .option('armor', { type: 'boolean', describe: 'ASCII-armored output instead of binary' }),
  handler: async (argv: Args) => {
    process.umask(0o077);
    try {
      const recipients = list(argv.recipient).map((p) => readArmored(p, '--recipient'));
      const pf = argv.passphraseFile as string | undefined;
      if (recipients.length === 0 && !pf) throw new CliError('give --recipient KEY.asc (repeatable) or --passphrase-file FILE', EXIT.usage);
      const passphrase = pf ? await passphraseFrom(pf, '--passphrase-file') : undefined;
      const signingKey = argv.signKey ? readArmored(argv.signKey as string, '--sign-key') : undefined;
      const signingKeyPassphrase = argv.signPassphraseFile
        ? await passphraseFrom(argv.signPassphraseFile as string, '--sign-passphrase-file')
        : undefined;
      const out = resolve(String(argv.out));
      if (existsSync(out) && !argv.force) throw new CliError(`${out} exists; give --force to replace it`, EXIT.usage);

      const { connect } = await import('../context.js');
      const { client } = await connect(argv as GlobalArgs);
      const p = progress('the server is preparing the backup (it hashes a snapshot first)');
      let dl;
      let file: string;
      let bytes: number;
      try {
        // The server hashes the whole snapshot before its first byte: allow for a large vault.
        dl = await client.backups.create({
          recipients: recipients.length ? recipients : undefined,
          passphrase,
          armor: argv.armor === true,
          timeoutMs: 600_000,
          signingKey: signingKey ? { armored: signingKey, passphrase: signingKeyPassphrase } : undefined,
        });
        const label = `writing ${basename(out)}`;
        p.update(label);
        const m = byteMeter(p, label);
        const { writeAtomically } = await import('../../common/files.js');
        const src = Readable.fromWeb(dl.body);
        // pipe() does not forward errors: a dropped connection must fail the write, not stall it.
        src.on('error', (e) => m.meter.destroy(e));
        file = await writeAtomically(dirname(out), basename(out), src.pipe(m.meter));
        bytes = m.bytes();
      } finally {
        p.stop();
      }
      const counts = dl.counts;
      if (bytes === 0) {
        // An OpenPGP message is never empty: never leave a file that looks like a backup but is not one.
        const { unlinkSync } = await import('node:fs');
        try {
          unlinkSync(file);
        } catch {
          /* already gone */
        }
        throw new CliError(
          'the server sent an empty backup; nothing was written (retry, and check the server log)',
          EXIT.unavailable,
          'backup_incomplete',
        );
      }
      if (argv.json) printJson({ file, bytes, counts });
      else
        process.stdout.write(
          `Backup written to ${file} (${human(bytes)}${counts ? `; ${countsLine(counts)}` : ''}).\nCheck ` +
            `it with: hush backup verify ${file} ` +
            `${recipients.length ? '--identity KEY.asc' : '--passphrase-file FILE'}\n`,
        );
    } catch (e) {
      throw backupFailure(e);
    }
  },
};

export const verifySubcommand: CommandModule = {
  command: 'verify <file>',
  describe:
    'Decrypt a backup file and check it (integrity, signature, body hash, counts, audit chain); ' + 'restores nothing, needs no server',
  builder: (y) => keyOptions(y.positional('file', { type: 'string', describe: 'Backup file' })),
  handler: async (argv: Args) => {
    try {
      const file = backupFileArg(argv);
      const keys = await decryptKeysFrom(argv);
      const { verifyBackupFile } = await import('../../vault/backup/local.js');
      const r = await verifyBackupFile(file, keys);
      const summary = {
        ok: true,
        file,
        format: r.header.format,
        createdAt: r.header.createdAt,
        vaultId: r.header.vaultId,
        source: r.header.source,
        counts: r.counts,
        bodySha256: r.bodySha256,
        auditChecked: r.auditChecked,
        signature: { signed: r.signature.signed, keyIds: r.signature.keyIds, verifiedBy: r.signature.verifiedBy },
      };
      if (argv.json) printJson(summary);
      else {
        // One write: `hush backup verify F | head -1` must not hit EPIPE on a second write.
        process.stdout.write(
          `OK: ${file}\n  made ${r.header.createdAt} from vault ${r.header.vaultId} ` +
            `(${r.header.source})\n  ${countsLine(r.counts)}\n  body SHA-256 ${r.bodySha256}, audit chain ` +
            `verified (${r.auditChecked} events)\n` +
            (r.signature.verifiedBy
              ? `  signed by ${r.signature.verifiedBy} (verified)\n`
              : r.signature.signed
                ? `  signed by key ${r.signature.keyIds.join(', ')} (not checked: give --signer)\n`
                : '  not signed\n'),
        );
      }
    } catch (e) {
      throw backupFailure(e);
    }
  },
};

export const restoreSubcommand: CommandModule = {
  command: 'restore <file>',
  describe: 'Restore a backup file into an EMPTY data dir or database (verifies the whole file first; needs ' + 'no server)',
  builder: (y) =>
    keyOptions(y.positional('file', { type: 'string', describe: 'Backup file' }))
      .option('data-dir', { type: 'string', describe: 'Target data dir (SQLite at <dir>/hush.db; a generated master.key goes here too)' })
      .option('database-url', { type: 'string', describe: 'Target PostgreSQL database (postgres://...), or sqlite:/path/file.db' })
      .option('master-key-file', {
        type: 'string',
        describe: 'Seal the restored vault with this master key instead of generating master.key in the data dir',
      }),
  handler: async (argv: Args) => {
    process.umask(0o077);
    try {
      const file = backupFileArg(argv);
      if (!argv.dataDir && !argv.databaseUrl)
        throw new CliError('give the restore target: --data-dir DIR or --database-url URL', EXIT.usage);
      const keys = await decryptKeysFrom(argv);
      const { loadConfig } = await import('../../vault/config.js');
      // The target is exactly what the flags name: HUSH_DATA_DIR / HUSH_DATABASE_URL in the environment do not redirect it.
      const env = { ...process.env };
      delete env.HUSH_DATA_DIR;
      delete env.HUSH_DATABASE_URL;
      const cfg = loadConfig(
        { 'data-dir': argv.dataDir, 'database-url': argv.databaseUrl, 'master-key-file': argv.masterKeyFile, 'log-level': 'silent' },
        env,
      );
      const { restoreBackupFile, silentLogger } = await import('../../vault/backup/local.js');
      const tty = process.stderr.isTTY === true && !argv.json;
      // Ctrl-C (or SIGTERM) fails the restore like any other error, so what it created is removed again; a second one exits at once.
      const interrupted = new AbortController();
      const onSignal = (sig: NodeJS.Signals) =>
        interrupted.abort(new CliError(`restore interrupted by ${sig}; nothing was restored`, 130, 'interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let r;
      try {
        r = await restoreBackupFile(
          cfg,
          file,
          keys,
          silentLogger,
          (phase) => {
            if (tty) process.stderr.write(phase === 'verify' ? 'verifying the backup...\n' : 'restoring...\n');
          },
          interrupted.signal,
        );
      } catch (e) {
        throw interrupted.signal.aborted ? interrupted.signal.reason : e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      const target = cfg.databaseUrl ? (r.target === 'database' ? 'the database' : r.target) : cfg.dataDir;
      if (argv.json) {
        printJson({
          ok: true,
          target,
          vaultId: r.vaultId,
          fromVault: r.header.vaultId,
          backupCreatedAt: r.header.createdAt,
          counts: r.counts,
          masterKeyFile: r.masterKeyFile,
          masterKeySource: r.masterKeySource,
          verified: r.verified,
        });
        return;
      }
      // The database URL may hold a password: it is not echoed.
      const serverArgs = cfg.databaseUrl
        ? `--database-url URL${r.masterKeySource === 'generated' ? ` --data-dir ${cfg.dataDir}` : ''}`
        : `--data-dir ${cfg.dataDir}`;
      process.stdout.write(
        `Restored ${countsLine(r.counts)} into ${target}.\nRead back and verified: the restored vault ` +
          `dumps identical to the backup.\n`,
      );
      if (r.masterKeySource === 'generated') {
        process.stdout.write(
          `New master key written to ${r.masterKeyFile} (mode 0600). Development only: for production ` +
            `move it off this disk and start with HUSH_MASTER_KEY_FILE (docs/keys.md).\n`,
        );
      } else {
        process.stdout.write(
          `Sealed with the master key from ${r.masterKeyFile ?? 'HUSH_MASTER_KEY'}; start the server with ` + `that key.\n`,
        );
      }
      process.stdout.write(
        `Tokens from the backup keep working. Start it with:\n\n  hush server ` +
          `${serverArgs}${r.masterKeySource === 'file' ? ` --master-key-file ${r.masterKeyFile}` : ''}\n\n`,
      );
    } catch (e) {
      throw backupFailure(e);
    }
  },
};

export const backupCommand: CommandModule = {
  command: 'backup <command>',
  describe: 'Encrypted OpenPGP backups: create (via the server), verify and restore (local)',
  builder: (y) =>
    y
      .command(createSubcommand)
      .command(verifySubcommand)
      .command(restoreSubcommand)
      .demandCommand(1, 'name a backup command: create, verify or restore'),
  handler: () => undefined,
};
