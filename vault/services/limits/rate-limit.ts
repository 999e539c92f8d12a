import type { FastifyBaseLogger } from 'fastify';
import { limitKey, type LimitStore } from '../../store/limit-store.js';

/**
 * The per-address request limit shared by every server on one PostgreSQL
 * database: at most `max` requests per address per fixed window (windows
 * are multiples of the window length since the epoch, so every server
 * agrees on them).
 *
 * A server does not count each request in the database. It claims requests
 * from the address's budget in the database (rate_limits) in blocks of
 * `lease`, and admits a request only against a block it holds. The sum of
 * the claims never exceeds `max` (each claim is one statement under the
 * row's lock), so the servers together never admit more than `max` in a
 * window: no overshoot, whatever the number of servers, their speed or the
 * order of requests. The price is the other way round: a server can answer
 * 429 while other servers still hold unused requests of the address's
 * budget, at most `lease` - 1 each once their waiting requests are served,
 * so the address may get as few as max - (servers - 1) x (lease - 1).
 *
 * A route limit below 100 x `lease` claims blocks of 1% of its own limit
 * (at least 1) instead.
 *
 * One request in `lease` per address and server waits for a claim (one
 * statement; every address waiting at that moment is claimed in the same
 * statement); the rest cost no database work. A claim that fails (database
 * unreachable) falls back to counting in this process for a second.
 */
export interface RateLimitDeps {
  store: LimitStore;
  /** Requests a server claims at a time from an address's budget. */
  lease: number;
  log: Pick<FastifyBaseLogger, 'warn'>;
}

interface Entry {
  window: number;
  /** Claimed and not yet used by a request. */
  held: number;
  /** The address's total claimed by all servers, as of this server's last claim. */
  used: number;
  /** The budget is spent: no claim can get more in this window. */
  spent: boolean;
  /** Requests waiting for the next claim. */
  waiting: number;
  /** Until when this address is counted in this process only (a claim failed), and that count. */
  localUntil: number;
  localCount: number;
}

interface Waiting {
  entry: Entry;
  key: string;
  windowStart: number;
  max: number;
}

/** Addresses tracked at most; beyond that the oldest entries are forgotten (losing only their unused claims). */
const MAX_ENTRIES = 100_000;
const LOCAL_FALLBACK_MS = 1_000;

export function sharedRateLimitFactory({ store, lease, log }: RateLimitDeps) {
  const entries = new Map<string, Entry>();
  /** Addresses waiting for the next claim, by window and max. */
  let pending = new Map<string, Waiting>();
  let inFlight: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  let expiredWindow = 0;
  let warnedAt = 0;

  async function claimRound(): Promise<void> {
    const batch = pending;
    pending = new Map();
    // One statement per (window, max): normally one.
    const groups = new Map<string, Waiting[]>();
    for (const item of batch.values()) {
      // Claimed meanwhile (a round that was in flight when it queued), or gone to a new window.
      if (item.entry.held >= item.entry.waiting || entries.get(item.key) !== item.entry) continue;
      const g = `${item.windowStart}:${item.max}`;
      groups.set(g, [...(groups.get(g) ?? []), item]);
    }
    for (const items of groups.values()) {
      const { windowStart, max } = items[0];
      // Enough for every waiting request, in whole leases, so one claim serves them all. A route with
      // its own small limit (unseal: 30 a minute) claims in blocks of 1% of it, so one server (or one
      // that restarted) does not hold the whole budget while another refuses.
      const block = Math.min(lease, Math.max(1, Math.ceil(max / 100)));
      const wants = items.map((i) => ({ ip: i.key, want: Math.ceil((i.entry.waiting - i.entry.held) / block) * block }));
      try {
        const got = await store.claimRequests(windowStart, max, wants);
        for (const i of items) {
          const r = got.get(i.key);
          if (!r || i.entry.window !== windowStart) continue;
          i.entry.held += r.granted;
          i.entry.used = r.used;
          i.entry.spent = r.used >= max;
        }
        if (windowStart > expiredWindow) {
          // The first claim of a window: forget and delete the windows before it.
          expiredWindow = windowStart;
          for (const [k, e] of entries) if (e.window < windowStart && e.waiting === 0) entries.delete(k);
          store.expireRequests(windowStart).catch(() => undefined);
        }
      } catch (e) {
        const now = Date.now();
        for (const i of items)
          if (i.entry.localUntil <= now) {
            i.entry.localUntil = now + LOCAL_FALLBACK_MS;
            i.entry.localCount = 0;
          }
        if (now - warnedAt > 10_000) {
          warnedAt = now;
          log.warn(
            { err: { message: (e as Error).message } },
            'could not claim shared rate-limit budget from the database; counting in this process for now',
          );
        }
      }
    }
  }

  /** Joins the next claim round; starts it as soon as no other is in flight. */
  function claim(): Promise<void> {
    if (next) return next;
    const start = async () => {
      if (inFlight) await inFlight.catch(() => undefined);
      next = null;
      inFlight = claimRound();
      try {
        await inFlight;
      } finally {
        inFlight = null;
      }
    };
    // Requests arriving in this tick join the same round.
    next = Promise.resolve().then(start);
    return next;
  }

  function entryFor(key: string, windowStart: number): Entry {
    let e = entries.get(key);
    if (e && e.window === windowStart) return e;
    if (e) entries.delete(key);
    e = { window: windowStart, held: 0, used: 0, spent: false, waiting: 0, localUntil: 0, localCount: 0 };
    if (entries.size >= MAX_ENTRIES) {
      for (const [k, old] of entries) {
        if (entries.size < MAX_ENTRIES * 0.9) break;
        if (old.waiting === 0) entries.delete(k);
      }
    }
    entries.set(key, e);
    return e;
  }

  return {
    /**
     * Counts one request of `ip`; resolves to the count the limiter compares
     * with `max` (above `max`: refuse) and the time left in the window.
     */
    async take(ip: string, windowMs: number, max: number): Promise<{ current: number; ttl: number }> {
      const key = limitKey(ip);
      for (let attempt = 0; ; attempt++) {
        const now = Date.now();
        const windowStart = Math.floor(now / windowMs) * windowMs;
        const ttl = windowStart + windowMs - now;
        const e = entryFor(key, windowStart);
        if (e.held > 0) {
          e.held--;
          return { current: Math.min(max, e.used - e.held), ttl };
        }
        if (e.spent) return { current: max + 1, ttl };
        // A claim that got nothing for this address without spending its budget cannot happen; never loop on it.
        if (attempt >= 3 && e.localUntil <= now) {
          e.localUntil = now + LOCAL_FALLBACK_MS;
          e.localCount = 0;
        }
        if (e.localUntil > now) return { current: ++e.localCount, ttl };
        e.waiting++;
        pending.set(key, { entry: e, key, windowStart, max });
        try {
          await claim();
        } finally {
          e.waiting--;
        }
      }
    },
  };
}
export type SharedRateLimit = ReturnType<typeof sharedRateLimitFactory>;
