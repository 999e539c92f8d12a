import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { connect, projectOf, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, printJson, say } from '../output.js';
import { withProgress } from '../progress.js';

interface RotateArgs extends GlobalArgs {
  PROJECT?: string;
  rewrap?: boolean;
}

const rotate: CommandModule<GlobalArgs, RotateArgs> = {
  command: 'rotate [PROJECT]',
  describe: 'Start a new data-key version for a project (admin:P); --rewrap re-encrypts older values under it',
  builder: (y) =>
    y
      .positional('PROJECT', { type: 'string', describe: 'project [default: --project, HUSH_PROJECT, .hush.json, profile]' })
      .option('rewrap', { type: 'boolean', describe: 'Also re-encrypt every older value under the new key' })
      .example('hush keys rotate api --rewrap', ''),
  handler: async (argv) => {
    const { client, conn } = await connect(argv);
    const project = projectOf(conn, argv.PROJECT);
    // A rewrap re-encrypts every value of the project in batches; give it far longer than one request.
    const r = await withProgress(`Rotating the data key of ${project}${argv.rewrap ? ' and rewrapping values' : ''}`, () =>
      client.projects.rotateKey(project, { rewrap: !!argv.rewrap, timeoutMs: 30 * 60_000 }),
    );
    emit(argv, r, () => {
      say(`Project ${r.project} now encrypts new values with data key v${r.dekVersion}.`);
      say(
        argv.rewrap
          ? `${r.rewrapped} older value(s) re-encrypted under it.`
          : `Older values stay readable under their old key version; re-encrypt them with: hush keys rotate ` + `${r.project} --rewrap`,
      );
    });
  },
};

interface MasterArgs extends GlobalArgs {
  'new-key-file'?: string;
  generate?: boolean;
}

/** The new master key as the server expects it: base64 of 32 bytes, from a file only its owner can read. */
function readNewKey(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new CliError(`cannot read --new-key-file ${path}: ${(e as NodeJS.ErrnoException).code}`, EXIT.usage);
  }
  if (!st.isFile()) throw new CliError(`--new-key-file ${path} is not a regular file`, EXIT.usage);
  if ((st.mode & 0o077) !== 0) {
    throw new CliError(
      `--new-key-file ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); ` + `run: chmod 600 ${path}`,
      EXIT.usage,
    );
  }
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text) || Buffer.from(text, 'base64').length !== 32) {
    throw new CliError(
      `--new-key-file ${path} must hold the base64 of 32 random bytes (make one with: umask 077; head ` +
        `-c 32 /dev/urandom | base64 > ${path})`,
      EXIT.usage,
    );
  }
  return text;
}

const rotateMaster: CommandModule<GlobalArgs, MasterArgs> = {
  command: 'rotate-master',
  describe:
    'Rewrap every wrapped key under a new master key (root): read from a local file, or, for a vault ' +
    'sealed with shares or a passphrase, made on the server',
  builder: (y) =>
    y
      .option('new-key-file', {
        type: 'string',
        describe: 'File with the new key (base64 of 32 bytes, mode 0600); not for a sealed vault, whose server ' + 'makes the key',
      })
      .option('generate', { type: 'boolean', describe: 'Create --new-key-file with a fresh random key first (refuses to overwrite)' })
      .example('hush keys rotate-master --new-key-file /run/hush/new.key --generate', ''),
  handler: async (argv) => {
    if (argv['new-key-file'] === undefined) {
      if (argv.generate) throw new CliError('--generate needs --new-key-file', EXIT.usage);
      const { client } = await connect(argv);
      const st = await client.sys.sealStatus();
      if (st.type === 'file')
        throw new CliError(
          "this vault's master key comes from a key file: give --new-key-file (with --generate to make " +
            'one); every server must then find it in its key file',
          EXIT.usage,
        );
      const r = await withProgress('Rewrapping keys under a new master key made on the server', () =>
        client.keys.rotateMaster(undefined, { timeoutMs: 10 * 60_000 }),
      );
      if (argv.json) {
        printJson(r);
        return;
      }
      say(`Master key rotated: ${r.rewrapped} wrapped key(s) moved from ${r.from} to ${r.to}.`);
      say(
        `The new key never left the server: it is wrapped under this vault's unseal key (${st.type}), ` +
          `so the same ${st.type === 'shamir' ? 'shares open' : 'passphrase opens'} it. Other unsealed ` +
          `servers adopt it within 10 s; any copy of the old key no longer opens the data.`,
      );
      return;
    }
    const path = resolve(argv['new-key-file']);
    if (argv.generate) {
      if (existsSync(path))
        throw new CliError(`${path} already exists; refusing to overwrite a key file (drop --generate to use it)`, EXIT.conflict);
      const { writeSecretFile } = await import('../../common/files.js');
      writeSecretFile(path, randomBytes(32).toString('base64') + '\n', { exclusive: true });
    }
    const newKey = readNewKey(path);
    const { client } = await connect(argv);
    const st = await client.sys.sealStatus().catch(() => null);
    if (st && st.type !== 'file') {
      throw new CliError(
        `this vault is sealed with ${st.type}: run hush keys rotate-master without --new-key-file, so ` +
          `the new key is made on the server and never written to a file (then delete ${path})`,
        EXIT.usage,
      );
    }
    const r = await withProgress('Rewrapping keys under the new master key', () =>
      client.keys.rotateMaster(newKey, { timeoutMs: 10 * 60_000 }),
    );
    const next =
      `every server's master key file (HUSH_MASTER_KEY_FILE or --master-key-file) must hold the key ` +
      `in ${path}; running servers read their file again and switch without a restart, and the old key ` +
      `no longer opens the vault`;
    if (argv.json) {
      printJson({ ...r, keyFile: path, next });
      return;
    }
    if (r.unchanged) {
      say(`The server already uses this master key (${r.to}); nothing changed.`);
      return;
    }
    say(`Master key rotated: ${r.rewrapped} wrapped key(s) moved from ${r.from} to ${r.to}.`);
    say(`Next: ${next}.`);
  },
};

export const keysCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'keys',
  describe: 'Rotate a project data key or the master key',
  builder: (y) => y.command(rotate).command(rotateMaster).demandCommand(1, 'name a keys command: rotate, rotate-master'),
  handler: () => undefined,
};
