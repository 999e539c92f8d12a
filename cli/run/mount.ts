import { mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeSecretFile } from '../../common/files.js';
import { CliError, EXIT } from '../output.js';

export type MountFormat = 'dotenv' | 'json' | 'raw';

/**
 * One dotenv line that the `dotenv` package parses back to exactly `value`:
 * single quotes (taken literally, newlines included), else backticks, else
 * double quotes when that is lossless. A value that no quoting can carry
 * exactly (it holds ', ` and ", or a carriage return) is refused rather than
 * written wrong.
 */
export function dotenvLine(key: string, value: string): string {
  if (value.includes('\r'))
    throw new CliError(
      `the value of ${key} contains a carriage return, which dotenv cannot carry exactly; use --mount-format json`,
      EXIT.usage,
    );
  if (!value.includes("'")) return `${key}='${value}'`;
  if (!value.includes('`')) return `${key}=\`${value}\``;
  if (!value.includes('"') && !/\\[nr]/.test(value)) return `${key}="${value}"`;
  throw new CliError(
    `the value of ${key} contains ', \` and " together, which dotenv cannot carry exactly; use --mount-format json`,
    EXIT.usage,
  );
}

/** The file's content. A dotenv file is read back with the `dotenv` package itself before it is used. */
export async function renderMount(secrets: Record<string, string>, format: MountFormat): Promise<string> {
  if (format === 'json') return JSON.stringify(secrets, null, 2) + '\n';
  if (format === 'raw') {
    const keys = Object.keys(secrets);
    if (keys.length !== 1) {
      throw new CliError(
        `--mount-format raw writes exactly one value, but ${keys.length} secrets were read; name it with --only KEY`,
        keys.length === 0 ? EXIT.notFound : EXIT.usage,
      );
    }
    return secrets[keys[0]];
  }
  const text = Object.entries(secrets)
    .map(([k, v]) => dotenvLine(k, v) + '\n')
    .join('');
  const { parse } = await import('dotenv');
  const back = parse(text);
  for (const [k, v] of Object.entries(secrets)) {
    if (back[k] !== v) throw new CliError(`the value of ${k} does not survive the dotenv format; use --mount-format json`, EXIT.usage);
  }
  return text;
}

/** Writes the file atomically with mode 0600, creating missing parent directories (0700). */
export function writeMount(path: string, content: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeSecretFile(path, content);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot write the --mount file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.error);
  }
}

/** Removes the file; a file already gone is fine. Synchronous, so it can run in an 'exit' handler. */
export function removeMount(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone or never written */
  }
}
