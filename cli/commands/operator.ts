import type { CommandModule } from 'yargs';
import { connect, type GlobalArgs } from '../context.js';
import { CliError, EXIT, emit, say } from '../output.js';
import { readHidden } from '../prompt.js';

/**
 * The operator commands that talk to a running server (client commands:
 * they are in the single-file client too): seal status, unseal, seal.
 * `operator init` and `operator rekey` work on the database and live in
 * commands/server.ts.
 */

/** A share or passphrase file: small, read whole, one trailing newline dropped. Its text is never echoed. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  const { readBounded, FileTooLargeError } = await import('../../common/files.js');
  let text: string;
  try {
    text = readBounded(path === '-' ? '/dev/stdin' : path, 8192);
  } catch (e) {
    if (e instanceof FileTooLargeError)
      throw new CliError(`${what} ${path} is larger than 4 KiB: not a ${what.replace(/^--/, '').replace(/-file$/, '')}`, EXIT.usage);
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.usage);
  }
  const out = text.replace(/\r?\n$/, '');
  if (!out) throw new CliError(`${what} ${path} is empty`, EXIT.usage);
  return out;
}

/**
 * An unseal call, retried for up to a minute while the server asks to wait
 * a second or two (429 with a short Retry-After: its passphrase bucket or
 * its unseal queue is full, as under a flood of wrong guesses).
 */
async function patiently<T>(call: () => Promise<T>): Promise<T> {
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      return await call();
    } catch (e) {
      const after = (e as { status?: number; retryAfterMs?: number }).retryAfterMs;
      if ((e as { status?: number }).status !== 429 || after === undefined || after > 5_000 || Date.now() + after > until) throw e;
      // Jittered, so it does not line up with a flood that retries on the same beat.
      await new Promise((r) => setTimeout(r, 50 + Math.random() * after));
    }
  }
}

function describe(s: { sealed: boolean; type: string; progress: number; threshold: number }): string {
  if (!s.sealed) return `Unsealed (seal: ${s.type}).`;
  if (s.type === 'file') return "Sealed. This vault's master key comes from a file: restart the server to open it.";
  if (s.type === 'passphrase') return 'Sealed: give the passphrase with hush operator unseal.';
  return `Sealed: ${s.progress} of ${s.threshold} unseal shares given.`;
}

interface UnsealArgs extends GlobalArgs {
  'share-file'?: string[];
  'passphrase-file'?: string;
  reset?: boolean;
}

const unseal: CommandModule<GlobalArgs, UnsealArgs> = {
  command: 'unseal',
  describe: 'Give an unseal share (prompted without echo, or --share-file) or the passphrase to a sealed server',
  builder: (y) =>
    y
      .option('share-file', {
        type: 'string',
        array: true,
        describe: 'File holding one share (repeat for several). Without it: prompted on a terminal, else one share per line on stdin',
      })
      .option('passphrase-file', { type: 'string', describe: 'File holding the passphrase (a vault sealed with --seal passphrase)' })
      .option('reset', { type: 'boolean', describe: 'Forget the shares given so far on this server' })
      .example('hush operator unseal', 'prompts for one share, without echo')
      .example('hush operator unseal --share-file /media/usb/share-2', '')
      .example('cat share-1 share-4 | hush operator unseal', 'shares on stdin, one per line'),
  handler: async (argv) => {
    const { client } = await connect(argv, { tokenOptional: true });
    if (argv.reset) {
      const s = await client.sys.unseal({ reset: true });
      emit(argv, s, () => say(describe(s)));
      return;
    }
    let s = await client.sys.sealStatus();
    if (!s.sealed) {
      emit(argv, s, () => say(describe(s)));
      return;
    }
    if (s.type === 'file') throw new CliError(describe(s), EXIT.usage, 'unseal_by_restart');
    const files = argv['share-file'] ?? [];
    if (s.type === 'passphrase' || argv['passphrase-file']) {
      let passphrase: string;
      if (argv['passphrase-file']) passphrase = await readSecretFile(argv['passphrase-file'], '--passphrase-file');
      else if (!process.stdin.isTTY) {
        const { readStdin, chompOne } = await import('../prompt.js');
        passphrase = chompOne((await readStdin()).split(/\n/)[0] ?? '');
        if (!passphrase)
          throw new CliError('no passphrase on stdin: pipe it, give --passphrase-file F, or run on a terminal to be prompted', EXIT.usage);
      } else passphrase = await readHidden('Passphrase (not echoed): ');
      s = await patiently(() => client.sys.unseal({ passphrase }));
    } else if (files.length) {
      for (const f of files) {
        const share = await readSecretFile(f, '--share-file');
        s = await patiently(() => client.sys.unseal({ share }));
        if (!s.sealed) break;
      }
    } else if (!process.stdin.isTTY) {
      // Shares piped in, one per line: cat share-1 share-2 | hush operator unseal
      const { readStdin } = await import('../prompt.js');
      const lines = (await readStdin())
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter(Boolean);
      if (lines.length === 0)
        throw new CliError(
          'no share on stdin: pipe one share per line, give --share-file F, or run on a terminal to be prompted',
          EXIT.usage,
        );
      for (const share of lines.slice(0, 255)) {
        s = await patiently(() => client.sys.unseal({ share }));
        if (!s.sealed) break;
      }
    } else {
      const share = await readHidden(`Unseal share ${s.progress + 1} of ${s.threshold} (not echoed): `);
      s = await patiently(() => client.sys.unseal({ share }));
    }
    emit(argv, s, () => say(describe(s)));
  },
};

interface SealArgs extends GlobalArgs {
  all?: boolean;
}

const seal: CommandModule<GlobalArgs, SealArgs> = {
  command: 'seal',
  describe: 'Seal the server now (root): it drops its keys and serves nothing until unsealed; --all seals every server on the database',
  builder: (y) =>
    y
      .option('all', { type: 'boolean', describe: 'Seal every server sharing this database (each within about a second)' })
      .example('hush operator seal --all', 'incident response: isolate every node'),
  handler: async (argv) => {
    const { client } = await connect(argv);
    let r;
    try {
      r = await client.sys.seal({ all: !!argv.all });
    } catch (e) {
      // A sealed server cannot check a root token: it answers 503 sealed before authentication.
      if ((e as { code?: string }).code !== 'sealed') throw e;
      if (argv.all)
        throw new CliError(
          'this server is sealed, so it cannot check the root token a seal --all needs: send it to a server that is unsealed',
          EXIT.unavailable,
          'sealed',
        );
      r = { sealed: true, already: true, all: false };
    }
    emit(argv, r, () => {
      say(r.already ? 'The server was already sealed.' : 'Sealed: the server dropped its keys and answers 503 sealed.');
      if (argv.all) say('Every other server sharing this database seals itself within about a second; unseal each one on its own.');
    });
  },
};

const status: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'seal-status',
  describe: 'Whether the server is sealed, and the unseal progress',
  handler: async (argv) => {
    const { client } = await connect(argv, { tokenOptional: true });
    const s = await client.sys.sealStatus();
    emit(argv, s, () => say(describe(s)));
  },
};

/** Registered under `hush operator` by both builds. */
export const operatorClientCommands = [unseal, seal, status] as unknown as CommandModule[];
