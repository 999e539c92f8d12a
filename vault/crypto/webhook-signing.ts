import { createHmac } from 'node:crypto';
import { SealedError } from '../errors.js';
import type { MasterKey, WrappedKey } from './keyring.js';
import { unwrapKey } from './keyring.js';
import { keyedBlake2b } from './sodium.js';

/**
 * Webhook signing secrets (docs/webhooks.md#signatures).
 *
 * A webhook's secret is never stored: it is keyed BLAKE2b-256 of the
 * webhook's id and salt under the vault's webhook key (a wrapped key of
 * purpose `webhook`), written as `whsec_` + base64url. So the database
 * holds nothing a reader could sign with, a master-key rotation rewraps
 * the one key like any other, and a seal wipes it with the rest.
 *
 * A delivery carries `Hush-Signature: t=<unix seconds>,v1=<hex>`, where
 * v1 is HMAC-SHA256 keyed with the secret's text over `<t>.<body>`, as
 * Stripe signs, so receivers can use the same few lines of code.
 */
export interface WebhookSigner {
  /** The secret to show once, at creation. */
  secret(id: string, salt: string): string;
  /** The Hush-Signature header value for `body` sent at `t` (unix seconds). */
  header(id: string, salt: string, t: number, body: string): string;
}

export const SECRET_PREFIX = 'whsec_';

export function webhookSigner(mk: MasterKey, key: WrappedKey): WebhookSigner {
  const raw = unwrapKey(mk, key);
  return mk._use((_k, s) => {
    const hash = keyedBlake2b(s, raw);
    let wiped = false;
    mk._track(() => {
      wiped = true;
      hash.wipe();
      s.memzero(raw);
    });
    const secret = (id: string, salt: string) => {
      if (wiped) throw new SealedError('the server was sealed: its keys are gone');
      return SECRET_PREFIX + hash(null, `hush-webhook-secret\n${id}\n${salt}`).toString('base64url');
    };
    return {
      secret,
      header(id, salt, t, body) {
        const v1 = createHmac('sha256', secret(id, salt)).update(`${t}.`).update(body).digest('hex');
        return `t=${t},v1=${v1}`;
      },
    };
  });
}
