import { parse as parseDotenv } from 'dotenv';
import { CliError, EXIT } from './output.js';
import { dict } from '../common/dict.js';

/**
 * Export formats for `hush secrets export`. Each one must give back every
 * value byte for byte when read by its consumer: dotenv's own parser, a
 * POSIX shell, `docker --env-file` (no multi-line values), a YAML parser,
 * or JSON.parse. Keys are written sorted, so exports diff cleanly.
 */
export const FORMATS = ['dotenv', 'json', 'shell', 'docker', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

const sorted = (secrets: Record<string, string>) =>
  Object.keys(secrets)
    .sort()
    .map((k) => [k, secrets[k]] as const);

function unrepresentable(key: string, format: string, why: string, instead: string): CliError {
  return new CliError(`cannot export ${key} as ${format}: ${why}; use ${instead}`, EXIT.usage, 'format_unsupported');
}

/**
 * dotenv's parser turns `\n` and `\r` inside double quotes into line breaks
 * and unescapes nothing else, so a value containing a double quote or a
 * literal backslash-n cannot be double-quoted. Those fall back to single
 * quotes, then backticks (both taken verbatim, line breaks included). Each
 * line is checked with dotenv.parse itself, and so is the whole file.
 */
export function dotenvLine(key: string, value: string): string {
  const candidates = [`${key}="${value.replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`, `${key}='${value}'`, `${key}=\`${value}\``];
  for (const line of candidates) {
    if (parseEnvFile(line)[key] === value) return line;
  }
  throw unrepresentable(
    key,
    'dotenv',
    'no dotenv quoting reads this value back unchanged (it combines all three quote characters with # or line breaks)',
    '--format json',
  );
}

export function toDotenv(secrets: Record<string, string>): string {
  const text = sorted(secrets)
    .map(([k, v]) => dotenvLine(k, v) + '\n')
    .join('');
  const back = parseEnvFile(text);
  for (const [k, v] of sorted(secrets)) {
    if (back[k] !== v)
      throw unrepresentable(k, 'dotenv', 'dotenv cannot read this value back unchanged next to its neighbours', '--format json');
  }
  return text;
}

/** POSIX single quotes take everything literally; a quote is written as '\'' . */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function toShell(secrets: Record<string, string>): string {
  return sorted(secrets)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join('');
}

/**
 * `docker run --env-file` reads KEY=VALUE lines with no quoting or escapes,
 * so a value is written as is and a multi-line value cannot be written.
 */
export function toDocker(secrets: Record<string, string>): string {
  return sorted(secrets)
    .map(([k, v]) => {
      if (/[\n\r]/.test(v))
        throw unrepresentable(k, 'docker', 'an --env-file cannot hold a multi-line value', '--format dotenv or json, or hush run');
      return `${k}=${v}\n`;
    })
    .join('');
}

/**
 * A YAML double-quoted scalar. Printable characters stay as they are;
 * quotes, backslashes, line breaks (including U+0085, U+2028, U+2029, which
 * YAML 1.1 treats as breaks) and other control characters are escaped.
 */
export function yamlQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (
      c < 0x20 ||
      c === 0x7f ||
      (c >= 0x80 && c <= 0x9f) ||
      c === 0x2028 ||
      c === 0x2029 ||
      c === 0xfeff ||
      (c >= 0xd800 && c <= 0xdfff)
    ) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else out += ch;
  }
  return out + '"';
}

export function toYaml(secrets: Record<string, string>): string {
  // Keys are quoted too: YAML 1.1 readers take a bare `Y`, `on` or `null` key as a boolean or null.
  const lines = sorted(secrets).map(([k, v]) => `${yamlQuote(k)}: ${yamlQuote(v)}\n`);
  return lines.length ? lines.join('') : '{}\n';
}

export function toJson(secrets: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(sorted(secrets)), null, 2) + '\n';
}

export function formatSecrets(format: Format, secrets: Record<string, string>): string {
  switch (format) {
    case 'dotenv':
      return toDotenv(secrets);
    case 'json':
      return toJson(secrets);
    case 'shell':
      return toShell(secrets);
    case 'docker':
      return toDocker(secrets);
    case 'yaml':
      return toYaml(secrets);
  }
}

/**
 * Parses a .env file with the dotenv package (never by hand).
 *
 * The dotenv package fills a plain object, where a variable named
 * __proto__ would set the object's prototype and vanish. It is renamed to
 * a stand-in name for the parse and given back under its own name, in a
 * map without a prototype (so constructor, toString... are variables like
 * any other). The stand-in cannot be a variable of the file: if the text
 * holds it anywhere, the file is parsed as it is.
 */
const PROTO_STAND_IN = 'HUSH_PROTO_STAND_IN_8c1f0e';
export function parseEnvFile(text: string): Record<string, string> {
  const rename = text.includes('__proto__') && !text.includes(PROTO_STAND_IN);
  const parsed = parseDotenv(rename ? text.replace(/^(\s*(?:export\s+)?)__proto__(\s*[=:])/gm, `$1${PROTO_STAND_IN}$2`) : text);
  const out = dict<string>();
  // Every stand-in in the parsed text was a __proto__ of the file (the text held none of its own), values included.
  for (const [k, v] of Object.entries(parsed))
    out[k === PROTO_STAND_IN && rename ? '__proto__' : k] = rename ? v.split(PROTO_STAND_IN).join('__proto__') : v;
  return out;
}
