import { randomInt } from 'node:crypto';
import { InvalidRequestError } from '../errors.js';

/**
 * Generated secret values (docs/lifecycle.md). Every symbol is drawn with
 * crypto.randomInt, which takes bytes from the OS CSPRNG and rejects the
 * values that would bias the draw, so each symbol is uniform over its set.
 */
export const CHARSETS = ['alnum', 'hex', 'base64url', 'words'] as const;
export type Charset = (typeof CHARSETS)[number];

const ALPHABETS: Record<Exclude<Charset, 'words'>, string> = {
  alnum: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  hex: '0123456789abcdef',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
};

/** Length limits: characters, or words for `words`. */
export const LENGTHS: Record<Charset, { min: number; max: number; default: number }> = {
  alnum: { min: 8, max: 4096, default: 32 },
  hex: { min: 8, max: 4096, default: 32 },
  base64url: { min: 8, max: 4096, default: 32 },
  words: { min: 4, max: 64, default: 6 },
};

export interface GeneratorSpec {
  charset: Charset;
  length: number;
}

/** Checks a generator spec from a request or from the database; fills in the default length. */
export function generatorSpec(charset: unknown, length: unknown): GeneratorSpec {
  if (typeof charset !== 'string' || !(CHARSETS as readonly string[]).includes(charset)) {
    throw new InvalidRequestError(`charset must be one of ${CHARSETS.join(', ')}`);
  }
  const lim = LENGTHS[charset as Charset];
  const n = length === undefined || length === null ? lim.default : length;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < lim.min || n > lim.max) {
    throw new InvalidRequestError(
      `length for charset ${charset} must be a whole number from ${lim.min} to ${lim.max}${charset === 'words' ? ' (words)' : ' (characters)'}`,
    );
  }
  return { charset: charset as Charset, length: n };
}

/** Bits of entropy of a value made from `spec`. */
export async function entropyBits(spec: GeneratorSpec): Promise<number> {
  const size = spec.charset === 'words' ? (await wordlist()).length : ALPHABETS[spec.charset].length;
  return Math.floor(spec.length * Math.log2(size));
}

let words: readonly string[] | null = null;
/** The BIP-39 English list (2048 words, 11 bits each), as @scure/bip39 ships it: loaded on first use. */
async function wordlist(): Promise<readonly string[]> {
  words ??= (await import('@scure/bip39/wordlists/english.js')).wordlist;
  return words;
}

export async function generateValue(spec: GeneratorSpec): Promise<string> {
  if (spec.charset === 'words') {
    const list = await wordlist();
    return Array.from({ length: spec.length }, () => list[randomInt(list.length)]).join('-');
  }
  const a = ALPHABETS[spec.charset];
  let out = '';
  for (let i = 0; i < spec.length; i++) out += a[randomInt(a.length)];
  return out;
}
