import { TOKEN_PREFIX } from 'hush-vault-sdk/token-format';

/**
 * Anything shaped like a Hush token, valid checksum or not. Tokens travel in
 * the Authorization header, but a caller can paste one into a URL, a query
 * string or a body field; this pattern lets logs and error messages blank it
 * wherever it lands. It also matches truncated and over-long tokens (20 or
 * more characters after the prefix): a token missing a few characters is
 * still nearly all of the secret.
 */
export const TOKEN_PATTERN = new RegExp(`${TOKEN_PREFIX}[0-9A-Za-z]{20,}`, 'g');

export const REDACTED_TOKEN = '[redacted-token]';

/**
 * A token with some of its characters percent-encoded, as it appears in a
 * raw URL (`hush%5F…`, `%68ush_…`): the form a request line carries into a
 * 404 message or a log line.
 */
const ENCODED_TOKEN_PATTERN = /(?:h|%68)(?:u|%75)(?:s|%73)(?:h|%68)(?:_|%5[fF])(?:[0-9A-Za-z]|%[0-9A-Fa-f]{2}){20,}/g;

/** Replaces every token-shaped substring (also percent-encoded) with a fixed marker. */
export function redactTokens(text: string): string {
  let out = text.includes(TOKEN_PREFIX) ? text.replace(TOKEN_PATTERN, REDACTED_TOKEN) : text;
  if (out.includes('%')) out = out.replace(ENCODED_TOKEN_PATTERN, (m) => (/%[0-9A-Fa-f]{2}/.test(m) ? REDACTED_TOKEN : m));
  return out;
}
