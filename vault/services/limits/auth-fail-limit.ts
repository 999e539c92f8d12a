import type { FastifyBaseLogger } from 'fastify';
import { limitKey, type LimitStore } from '../../store/limit-store.js';
import type { FailGuard } from '../../store/token-store.js';

/**
 * Failed authentications per client address. Once an address has `limit`
 * failures inside a window (which starts at its first failure), every
 * authenticated request from it gets 429 until the window ends, so a
 * correct guess cannot be told from a wrong one.
 */
function inProcess(limit: number, windowMs: number) {
  const seen = new Map<string, { start: number; count: number }>();
  return {
    blockedSince(ip: string, now: number): number | null {
      const s = seen.get(ip);
      if (!s || now - s.start >= windowMs) return null;
      return s.count >= limit ? s.start : null;
    },
    /** Counts a failure; returns the address's failures in the current window. */
    fail(ip: string, now: number): number {
      let s = seen.get(ip);
      if (!s || now - s.start >= windowMs) seen.set(ip, (s = { start: now, count: 1 }));
      else s.count++;
      if (seen.size > 100_000) for (const [k, v] of seen) if (now - v.start >= windowMs) seen.delete(k);
      return s.count;
    },
  };
}

export interface AuthFailLimitDeps {
  limit: number;
  windowMs: number;
  /** Shared with every server on the database (PostgreSQL); null: counted in this process (SQLite). */
  store: LimitStore | null;
  log: Pick<FastifyBaseLogger, 'warn'>;
}

/**
 * The failed-authentication limit, in process or shared. Shared, the count
 * lives in the database (auth_failures): each failure is one statement, and
 * the check costs no round trip of its own, because it rides in the token
 * lookup (guard(), token-store forAuth). Only a request that makes no lookup
 * (no or a malformed token) reads it separately. Should a failure not be
 * written (database unreachable), it is counted in process instead, and
 * that count is checked too, so the limit never lapses.
 */
export function authFailLimitFactory({ limit, windowMs, store, log }: AuthFailLimitDeps) {
  const local = inProcess(limit, windowMs);
  let expiredAt = 0;

  return {
    /** Seconds until an address blocked since `since` may try again. */
    retryAfter(since: number, now: number): number {
      return Math.max(1, Math.ceil((since + windowMs - now) / 1000));
    },
    /** Start of the window that blocks the address in this process (null: not blocked here). */
    localBlockedSince(ip: string, now: number): number | null {
      return local.blockedSince(ip, now);
    },
    /** What the token lookup checks the address against (shared); null: nothing to check there. */
    guard(ip: string): FailGuard | null {
      return store ? { ip: limitKey(ip), limit, windowMs } : null;
    },
    /** The shared block, for a request that makes no token lookup (null: not blocked, or not shared). */
    async sharedBlockedSince(ip: string, now: number): Promise<number | null> {
      return store ? store.blockedSince(ip, limit, now, windowMs) : null;
    },
    /** Counts a failure; returns the address's failures in its current window. */
    async fail(ip: string, now: number): Promise<number> {
      if (!store) return local.fail(ip, now);
      try {
        const { failures } = await store.recordFailure(ip, now, windowMs);
        if (now - expiredAt >= windowMs) {
          expiredAt = now;
          store.expireFailures(now, windowMs).catch(() => undefined);
        }
        return failures;
      } catch (e) {
        log.warn(
          { err: { message: (e as Error).message } },
          'could not count a failed authentication in the database; counting it in this process',
        );
        return local.fail(ip, now);
      }
    },
  };
}
export type AuthFailLimit = ReturnType<typeof authFailLimitFactory>;
