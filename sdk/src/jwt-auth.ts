// Machine identity on the client: the token a client built with `{ auth }` sends, got by a JWT login and renewed before it expires.
import { AuthError, isHushError } from './errors.js';
import type { JwtLogin } from './types.js';

/** The token an authenticated call sends, and what the transport tells it back. */
export interface TokenSource {
  /**
   * A token for the next attempt, logging in first when there is none or it
   * is due for renewal. `fresh` is true when this call waited for the login
   * that produced it (a 401 to such a token is not worth another login).
   */
  get(signal?: AbortSignal): Promise<{ token: string; fresh: boolean }>;
  /** The server answered 401 to `token`: forget it, unless a newer one replaced it already. */
  rejected(token: string): void;
}

/** Renew this long before expiry: max(30 s, 20% of the lifetime), at most half the lifetime (a 10 s token is not renewed on every call). */
export function renewBeforeMs(lifetimeMs: number): number {
  return Math.min(Math.max(30_000, lifetimeMs * 0.2), lifetimeMs / 2);
}

/** After a failed renewal, how long a still-valid token is used before the next try, and how close to expiry it stops being used. */
const RETRY_RENEW_MS = 5_000;
const EXPIRY_MARGIN_MS = 5_000;

interface Held {
  token: string;
  renewAt: number;
  expiresAt: number;
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Keeps one token from `login(role, jwt())`. Concurrent calls share one
 * in-flight login, which no single caller's signal cancels (the others
 * still wait for it). A renewal that fails while the held token still has
 * more than a few seconds left keeps that token and tries again a few
 * seconds later, so a blip at the issuer does not fail calls that the
 * current token can still make.
 */
export function createJwtTokenSource(
  role: string,
  jwt: () => string | Promise<string>,
  login: (role: string, jwt: string) => Promise<JwtLogin>,
  now: () => number = Date.now,
): TokenSource {
  let held: Held | null = null;
  let inflight: Promise<Held> | null = null;

  async function logIn(): Promise<Held> {
    let raw: unknown;
    try {
      raw = await jwt();
    } catch (e) {
      if (isHushError(e)) throw e;
      throw new AuthError(
        'jwt_unavailable',
        `cannot get the JWT to log in to role "${role}": ${String((e as Error)?.message ?? e)
          .split('\n')[0]
          .slice(0, 300)}`,
        { cause: e },
      );
    }
    if (typeof raw !== 'string')
      throw new AuthError('jwt_unavailable', `the jwt function for role "${role}" returned ${typeof raw}, not a string`);
    const text = raw.trim();
    if (!text) throw new AuthError('jwt_unavailable', `the JWT to log in to role "${role}" is empty`);
    const started = now();
    const r = await login(role, text);
    const exp = Date.parse(r.expiresAt);
    // Without a usable expiry the token is used until the server answers 401.
    if (!Number.isFinite(exp)) return { token: r.token, renewAt: Infinity, expiresAt: Infinity };
    return { token: r.token, renewAt: exp - renewBeforeMs(Math.max(0, exp - started)), expiresAt: exp };
  }

  return {
    async get(signal) {
      if (signal?.aborted) throw signal.reason;
      if (held && now() < held.renewAt) return { token: held.token, fresh: false };
      inflight ??= logIn()
        .then((h) => {
          held = h;
          return h;
        })
        .finally(() => {
          inflight = null;
        });
      try {
        return { token: (await abortable(inflight, signal)).token, fresh: true };
      } catch (e) {
        if (signal?.aborted) throw e;
        const still = held;
        if (still && now() < still.expiresAt - EXPIRY_MARGIN_MS) {
          if (still.renewAt <= now()) held = { ...still, renewAt: now() + RETRY_RENEW_MS };
          return { token: still.token, fresh: false };
        }
        throw e;
      }
    },
    rejected(token) {
      if (held?.token === token) held = null;
    },
  };
}
