import type { Db } from './db.js';
import { query, sql } from './sql.js';

/**
 * The limits every server on one PostgreSQL database shares
 * (migrations/20261207000100_shared_limits.ts). Each statement runs alone
 * (its own implicit transaction): a row is updated under its row lock, so
 * concurrent servers never lose a count.
 */
const Q = {
  /**
   * Counts one failed authentication of `ip` at `now`: a window that ended
   * (started at or before now - window) starts over at now with 1.
   * Params: ip, now, now - window, now - window.
   */
  failRecord: query(`insert into auth_failures (ip, window_start, failures) values (?, ?, 1)
    on conflict (ip) do update set
      failures = case when auth_failures.window_start <= ? then 1 else auth_failures.failures + 1 end,
      window_start = case when auth_failures.window_start <= ? then excluded.window_start else auth_failures.window_start end
    returning failures, window_start`),
  /** When the window in which `ip` reached `limit` failures started, if it has not ended. Params: ip, limit, now - window. */
  failBlocked: query('select max(window_start) as blocked_since from auth_failures where ip = ? and failures >= ? and window_start > ?'),
  failExpire: query('delete from auth_failures where window_start <= ?'),
  /**
   * Claims requests from the budget of each address in the fixed window
   * starting at window_start: each gets at most what it wants and at most
   * what is left of `max`; last_grant returns what this claim got (the row
   * is locked by the statement, so no other claim comes in between).
   * PostgreSQL only. Params: window_start, max, max, [{ip, want}] as JSON, max, max.
   */
  rateClaim: query(`insert into rate_limits (ip, window_start, used, last_grant)
    select k.ip, ?, least(k.want, ?), least(k.want, ?) from json_to_recordset(?::json) as k(ip text, want integer)
    on conflict (ip, window_start) do update set
      used = rate_limits.used + greatest(0, least(excluded.last_grant, ? - rate_limits.used)),
      last_grant = greatest(0, least(excluded.last_grant, ? - rate_limits.used))
    returning ip, used, last_grant`),
  rateExpire: query('delete from rate_limits where window_start < ?'),
};

/** Addresses are stored as given, cut to this length (a misconfigured proxy could pass anything). */
const KEY_MAX = 128;
export const limitKey = (ip: string) => (typeof ip === 'string' ? ip : 'unknown').slice(0, KEY_MAX);
const keyOf = limitKey;

export function limitStoreFactory(db: Db) {
  return {
    /** Counts a failure; returns the failures in the address's current window and when that window started. */
    async recordFailure(ip: string, now: number, windowMs: number): Promise<{ failures: number; windowStart: number }> {
      const r = await sql(db).get(Q.failRecord, keyOf(ip), now, now - windowMs, now - windowMs);
      return { failures: Number(r!.failures), windowStart: Number(r!.window_start) };
    },
    /** Start of the window in which the address reached `limit` failures (null: not blocked at `now`). */
    async blockedSince(ip: string, limit: number, now: number, windowMs: number): Promise<number | null> {
      const r = await sql(db).get(Q.failBlocked, keyOf(ip), limit, now - windowMs);
      return r?.blocked_since == null ? null : Number(r.blocked_since);
    },
    /** Deletes failure windows that ended before `now`. */
    async expireFailures(now: number, windowMs: number): Promise<number> {
      return sql(db).run(Q.failExpire, now - windowMs);
    },
    /** One claim per address (each listed once); returns what each got and the address's total claimed so far. */
    async claimRequests(
      windowStart: number,
      max: number,
      wants: { ip: string; want: number }[],
    ): Promise<Map<string, { granted: number; used: number }>> {
      const rows = await sql(db).all(
        Q.rateClaim,
        windowStart,
        max,
        max,
        JSON.stringify(wants.map((w) => ({ ip: keyOf(w.ip), want: w.want }))),
        max,
        max,
      );
      const out = new Map<string, { granted: number; used: number }>();
      for (const r of rows) out.set(r.ip, { granted: Number(r.last_grant), used: Number(r.used) });
      return out;
    },
    /** Deletes rate-limit windows that started before `windowStart`. */
    async expireRequests(windowStart: number): Promise<number> {
      return sql(db).run(Q.rateExpire, windowStart);
    },
  };
}
export type LimitStore = ReturnType<typeof limitStoreFactory>;
