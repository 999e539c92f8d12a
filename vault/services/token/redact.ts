import { HushError } from '../../errors.js';
import { TOKEN_CHECKSUM_CHARS, TOKEN_RANDOM_CHARS, TOKEN_SHAPE } from 'hush-vault-sdk/token-format';

/**
 * Anything that can be a Hush token, checksum right or not, in any letter
 * case (TOKEN_SHAPE in the SDK's token-format): tokens travel in the
 * Authorization header, but a caller can paste one into a URL, a query
 * string or a body field; logs, error messages and audit events blank it
 * wherever it lands. Only that shape is blanked: a name such as
 * `hush_feature_flag` or `HUSH_FEATURE_FLAG` is left as it is.
 */
export const TOKEN_PATTERN = new RegExp(TOKEN_SHAPE, 'gi');

export const REDACTED_TOKEN = '[redacted-token]';

/** One character of a token's body, as it is or percent-encoded (%30-%39, %41-%5A, %61-%7A; hex digits in either case). */
const BODY_CHAR = '(?:[0-9a-z]|%3[0-9]|%4[1-9a-f]|%5[0-9a]|%6[1-9a-f]|%7[0-9a])';
/**
 * A token with some of its characters percent-encoded, as it appears in a
 * raw URL (`hush%5F…`, `%68ush_…`): the form a request line carries into a
 * 404 message or a log line.
 */
const ENCODED_TOKEN_PATTERN = new RegExp(
  `(?:h|%[46]8)(?:u|%[57]5)(?:s|%[57]3)(?:h|%[46]8)(?:_|%5f)${BODY_CHAR}{${TOKEN_RANDOM_CHARS + TOKEN_CHECKSUM_CHARS}}`,
  'gi',
);

/** Replaces every token-shaped substring (also percent-encoded) with a fixed marker. */
export function redactTokens(text: string): string {
  let out = text.replace(TOKEN_PATTERN, REDACTED_TOKEN);
  if (out.includes('%')) out = out.replace(ENCODED_TOKEN_PATTERN, REDACTED_TOKEN);
  return out;
}

/**
 * Free text that is stored and shown to others (token names and
 * descriptions, webhook URLs and descriptions) never holds a token: one that
 * does is refused (400 token_in_text) rather than stored or silently altered.
 */
export function refuseTokenText(field: string, text: string | null | undefined): void {
  if (typeof text === 'string' && redactTokens(text) !== text) {
    throw new HushError(
      'token_in_text',
      400,
      `${field} holds a Hush token ("hush_" and 49 letters and digits): a token is never stored as text; remove it, and revoke the token if it is a real one`,
    );
  }
}
