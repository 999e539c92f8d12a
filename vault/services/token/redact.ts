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

/** Replaces every token-shaped substring with a fixed marker. */
export function redactTokens(text: string): string {
  return text.includes(TOKEN_PREFIX) ? text.replace(TOKEN_PATTERN, REDACTED_TOKEN) : text;
}
