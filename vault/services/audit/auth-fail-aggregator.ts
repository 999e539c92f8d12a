import { isIP } from 'node:net';
import type { AuditContext, AuditInput } from './audit-service.js';

export interface AuthFailAggregatorDeps {
  record: (ctx: AuditContext, input: AuditInput) => Promise<void>;
  /** Called when an event cannot be recorded (the request has failed anyway). */
  onError: (e: unknown) => void;
  windowMs?: number;
  now?: () => number;
  /** Most networks tracked at once; failures from further networks are counted together (network "other"). */
  maxNetworks?: number;
}

/** Networks counted apart at most: with the overflow, at most 2 x 100 + 1 events a window, however many addresses fail. */
export const AUTH_FAIL_MAX_NETWORKS = 100;
/** The bucket of the failures from networks past the cap. */
const OTHER = 'other';

/**
 * The network a client address is counted under: its /24 for IPv4, its /64
 * for IPv6 (an attacker holds a whole /64, or more, as easily as one
 * address). IPv4-mapped IPv6 addresses count as IPv4.
 */
export function networkOf(ip: string): string {
  // A connection reset before the request was handled has no address left.
  if (typeof ip !== 'string') return 'unknown';
  let a = ip.split('%')[0];
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) a = a.slice(7);
  if (isIP(a) === 4) return `${a.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIP(a) !== 6) return a;
  // An embedded dotted quad (::1.2.3.4) is two groups; then "::" stands for the missing zero groups.
  a = a.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, w, x, y, z) => `${((+w << 8) | +x).toString(16)}:${((+y << 8) | +z).toString(16)}`);
  const [head, tail] = a.includes('::') ? a.split('::') : [a, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** What a failed request contributes: never the token it presented. */
export interface AuthFailAttempt {
  ip: string;
  requestId: string | null;
  route: string | null;
  method: string;
}

interface Window {
  start: number;
  /** The last address seen (the event's ip) and how many distinct ones (up to 1,000 remembered). */
  ip: string | null;
  addresses: Set<string>;
  failures: number;
  lockedOut: number;
  reasons: Record<string, number>;
  route: string | null;
  method: string;
}

/**
 * Turns failed authentications into at most one `auth.fail` event per
 * client network (/24, /64) per window, and a bounded number overall, so a
 * flood from many addresses cannot fill the disk, without losing the size
 * of the flood:
 *
 * - the first failure from a network is recorded at once (count 1);
 * - later failures in the window are only counted (`count`, by reason in
 *   `reasons`), and so are requests refused with 429 while the address is
 *   locked out (`lockedOut`);
 * - when the window ends with anything counted, one summary event records
 *   the counts and opens the next window, so a steady flood yields one event
 *   a minute; a quiet window closes the address's entry;
 * - `close()` writes every pending summary (server shutdown);
 * - at most `maxNetworks` networks are tracked at once: failures from
 *   further networks are only counted, together, in one "other" summary.
 *
 * State lives in this process: N server processes write up to N events per
 * address per window.
 */
export function authFailAggregator({
  record,
  onError,
  windowMs = 60_000,
  now = Date.now,
  maxNetworks = AUTH_FAIL_MAX_NETWORKS,
}: AuthFailAggregatorDeps) {
  const windows = new Map<string, Window>();
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const fresh = (t: number, w: { route: string | null; method: string }): Window => ({
    start: t,
    ip: null,
    addresses: new Set(),
    failures: 0,
    lockedOut: 0,
    reasons: {},
    route: w.route,
    method: w.method,
  });
  const seen = (w: Window, ip: string) => {
    w.ip = ip;
    if (w.addresses.size < 1000) w.addresses.add(ip);
  };

  function write(ip: string | null, requestId: string | null, input: AuditInput): Promise<void> {
    const p = record({ actorId: 'anonymous', actorName: 'anonymous', ip, requestId }, input).catch(onError);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    return p;
  }

  function summary(network: string, w: Window, at: number): Promise<void> {
    const top = Object.entries(w.reasons).sort((a, b) => b[1] - a[1])[0];
    return write(network === OTHER ? null : w.ip, null, {
      action: 'auth.fail',
      outcome: 'denied',
      target: { route: w.route, method: w.method },
      detail: {
        reason: top ? top[0] : 'rate_limited',
        count: w.failures,
        reasons: { ...w.reasons },
        lockedOut: w.lockedOut,
        aggregated: true,
        network,
        addresses: w.addresses.size,
        since: new Date(w.start).toISOString(),
        until: new Date(at).toISOString(),
      },
    });
  }

  function sweep(all = false): void {
    const t = now();
    for (const [ip, w] of windows) {
      if (!all && t - w.start < windowMs) continue;
      if (w.failures + w.lockedOut > 0) {
        void summary(ip, w, t);
        windows.set(ip, fresh(t, w));
      } else {
        windows.delete(ip);
      }
    }
    if (all) windows.clear();
    if (windows.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  }

  function ensureTimer(): void {
    if (timer || closed) return;
    timer = setInterval(() => sweep(), Math.max(10, Math.min(windowMs / 6, 10_000)));
    timer.unref();
  }

  /**
   * The open window for `ip`. An expired one (the sweep has not run yet) is
   * summarised and replaced by a fresh one, just as the sweep would do.
   */
  function current(ip: string, t: number): Window | null {
    const w = windows.get(ip);
    if (!w) return null;
    if (t - w.start < windowMs) return w;
    if (w.failures + w.lockedOut === 0) {
      windows.delete(ip);
      return null;
    }
    void summary(ip, w, t);
    const next = fresh(t, w);
    windows.set(ip, next);
    return next;
  }

  /** The network a new failure is counted under: its own, or "other" once maxNetworks are tracked. */
  function bucket(ip: string): string {
    const n = networkOf(ip);
    return windows.has(n) || windows.size - (windows.has(OTHER) ? 1 : 0) < maxNetworks ? n : OTHER;
  }

  return {
    /** A failed authentication. Resolves once any event it causes is written. */
    fail(a: AuthFailAttempt, reason: string): Promise<void> {
      const t = now();
      const net = bucket(a.ip);
      const w = current(net, t) ?? (net === OTHER ? fresh(t, a) : null);
      if (w) {
        w.failures++;
        w.reasons[reason] = (w.reasons[reason] ?? 0) + 1;
        w.route = a.route;
        w.method = a.method;
        seen(w, a.ip);
        if (net === OTHER) {
          windows.set(OTHER, w);
          ensureTimer();
        }
        return Promise.resolve();
      }
      const nw = fresh(t, a);
      seen(nw, a.ip);
      windows.set(net, nw);
      ensureTimer();
      return write(a.ip, a.requestId, {
        action: 'auth.fail',
        outcome: 'denied',
        target: { route: a.route, method: a.method },
        detail: { reason, count: 1, reasons: { [reason]: 1 }, lockedOut: 0, aggregated: false, network: net },
      });
    },

    /** A request refused with 429 because its address is locked out; counted, never recorded on its own. */
    lockedOut(a: AuthFailAttempt): void {
      const t = now();
      const net = bucket(a.ip);
      const w = current(net, t) ?? fresh(t, a);
      w.lockedOut++;
      seen(w, a.ip);
      windows.set(net, w);
      ensureTimer();
    },

    /** Writes the pending summaries now, whatever their age (shutdown, tests). */
    async flush(): Promise<void> {
      sweep(true);
      await Promise.all([...inflight]);
    },

    async close(): Promise<void> {
      closed = true;
      if (timer) {
        clearInterval(timer);
        timer = null;
      }
      sweep(true);
      await Promise.all([...inflight]);
    },

    /** Networks with an open window (for tests and metrics). */
    get size() {
      return windows.size;
    },
  };
}
export type AuthFailAggregator = ReturnType<typeof authFailAggregator>;
