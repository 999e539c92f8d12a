import { CliError, EXIT } from './output.js';

/** Exit code when the user cancels a prompt with Ctrl-C (128 + SIGINT, as a shell reports it). */
export const EXIT_CANCELLED = 130;

/** Reads all of stdin as UTF-8 (for `--token-stdin` and piped values). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<string | Buffer>) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Drops one trailing line ending, which `echo value |` and here-strings add. */
export function chompOne(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}

/**
 * Reads a line from the terminal without echoing it. The prompt goes to
 * stderr, so stdout stays clean for the command's output. Ctrl-C cancels
 * (exit 130), Ctrl-U clears, Backspace deletes.
 */
export async function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new CliError('no terminal to prompt on; pipe the value on stdin instead', EXIT.usage);
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  let chars: string[] = [];
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (s: string) => {
        for (const ch of s) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            resolve(chars.join(''));
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new CliError('cancelled', EXIT_CANCELLED));
            return;
          }
          if (ch === '\u0004') {
            if (chars.length === 0) {
              stdin.off('data', onData);
              reject(new CliError('cancelled', EXIT_CANCELLED));
              return;
            }
            continue;
          }
          if (ch === '\u007f' || ch === '\b') {
            chars.pop();
            continue;
          }
          if (ch === '\u0015') {
            chars = [];
            continue;
          }
          // Escape sequences (arrow keys) and other control characters are not part of a secret typed by hand.
          if (ch < ' ' && ch !== '\t') continue;
          chars.push(ch);
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/** Asks for a visible line of input on the terminal (used for delete confirmations). */
export async function readLine(prompt: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(prompt)).trim();
  } finally {
    rl.close();
  }
}

/**
 * Destructive commands need `--yes`, or on a terminal the name typed back.
 * Without a terminal and without `--yes` they refuse, so a script never
 * deletes by accident.
 */
export async function confirmByName(what: string, name: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliError(`refusing to delete ${what} ${name} without confirmation; pass --yes`, EXIT.usage);
  }
  const typed = await readLine(`This deletes ${what} ${name} and every secret in it. Type "${name}" to confirm: `);
  if (typed !== name) throw new CliError('not confirmed; nothing was deleted', EXIT.usage);
}
