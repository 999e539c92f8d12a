/**
 * Token strings: "hush_" + 43 base62 chars of randomness (>= 256 bits) + a
 * 6-char base62 CRC32 checksum of the random part. The checksum lets the CLI,
 * the SDK and secret scanners reject a mistyped or truncated token offline.
 * Pure code with no dependencies: the SDK imports it too.
 */
export const TOKEN_PREFIX = 'hush_';
export const TOKEN_RANDOM_CHARS = 43;
export const TOKEN_CHECKSUM_CHARS = 6;
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_RANDOM_CHARS + TOKEN_CHECKSUM_CHARS;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

let crcTable: Uint32Array | null = null;
function crc32(text: string): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = crcTable[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function checksum(random: string): string {
  let n = crc32(random);
  let out = '';
  for (let i = 0; i < TOKEN_CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Builds a token from random bytes (rejection-sampled into base62, so no bias). */
export function formatToken(randomBytes: (n: number) => Uint8Array): string {
  let random = '';
  while (random.length < TOKEN_RANDOM_CHARS) {
    for (const b of randomBytes(64)) {
      if (b < 248 && random.length < TOKEN_RANDOM_CHARS) random += ALPHABET[b % 62];
    }
  }
  return TOKEN_PREFIX + random + checksum(random);
}

export type TokenCheck = { ok: true } | { ok: false; reason: string };

/** Offline check of a token string's shape and checksum. Never echoes the token. */
export function checkTokenFormat(token: string): TokenCheck {
  if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'token is empty' };
  if (!token.startsWith(TOKEN_PREFIX)) return { ok: false, reason: 'token does not start with "hush_"' };
  if (token.length !== TOKEN_LENGTH) return { ok: false, reason: `token has ${token.length} characters, expected ${TOKEN_LENGTH}` };
  const body = token.slice(TOKEN_PREFIX.length);
  if (!/^[0-9A-Za-z]+$/.test(body)) return { ok: false, reason: 'token contains characters outside [0-9A-Za-z]' };
  const random = body.slice(0, TOKEN_RANDOM_CHARS);
  if (checksum(random) !== body.slice(TOKEN_RANDOM_CHARS))
    return { ok: false, reason: 'token checksum does not match (mistyped or truncated?)' };
  return { ok: true };
}

/**
 * Text that holds a token (a regular expression source, to be used with the
 * `i` flag): "hush_" and 49 base62 characters, in any letter case, because a
 * token whose letters changed case still gives nearly all of it away (the
 * checksum lets the original case be searched for offline). Names that only
 * start with the prefix (`HUSH_FEATURE_FLAG`, `hush_feature_flag`) do not
 * match, nor do shorter runs: a truncated token is not a token.
 */
export const TOKEN_SHAPE = `${TOKEN_PREFIX}[0-9a-z]{${TOKEN_RANDOM_CHARS + TOKEN_CHECKSUM_CHARS}}`;

/** True when `text` holds something token-shaped (see TOKEN_SHAPE). */
export function containsToken(text: string): boolean {
  return new RegExp(TOKEN_SHAPE, 'i').test(text);
}
