import type { AuditContext, AuditInput } from './audit-service.js';

export interface AuthFailAggregatorDeps {
  record: (ctx: AuditContext, input: AuditInput) => Promise<void>;
  /** Called when an event cannot be recorded (the request has failed anyway). */
  onError: (e: unknown) => void;
  windowMs?: number;
  now?: () => number;
}

/** What a failed request contributes: never the token it presented. */
export interface AuthFailAttempt { ip: string; requestId: string | null; route: string | null; method: string }

interface Window {
  start: number;
  failures: number;
  lockedOut: number;
  reasons: Record<string, number>;
  route: string | null;
  method: string;
}

/**
 * Turns failed authentications into at most one `auth.fail` event per
 * client IP per window, so a flood cannot fill the disk, without losing the
 * size of the flood:
 *
 * - the first failure from an address is recorded at once (count 1);
 * - later failures in the window are only counted (`count`, by reason in
 *   `reasons`), and so are requests refused with 429 while the address is
 *   locked out (`lockedOut`);
 * - when the window ends with anything counted, one summary event records
 *   the counts and opens the next window, so a steady flood yields one event
 *   a minute; a quiet window closes the address's entry;
 * - `close()` writes every pending summary (server shutdown).
 *
 * State lives in this process: N server processes write up to N events per
 * address per window.
 */
export function authFailAggregator({ record, onError, windowMs = 60_000, now = Date.now }: AuthFailAggregatorDeps) {
  const windows = new Map<string, Window>();
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  function write(ip: string, requestId: string | null, input: AuditInput): Promise<void> {
    const p = record({ actorId: 'anonymous', actorName: 'anonymous', ip, requestId }, input).catch(onError);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    return p;
  }

  function summary(ip: string, w: Window, at: number): Promise<void> {
    const top = Object.entries(w.reasons).sort((a, b) => b[1] - a[1])[0];
    return write(ip, null, {
      action: 'auth.fail', outcome: 'denied', target: { route: w.route, method: w.method },
      detail: {
        reason: top ? top[0] : 'rate_limited', count: w.failures, reasons: { ...w.reasons }, lockedOut: w.lockedOut, aggregated: true,
        since: new Date(w.start).toISOString(), until: new Date(at).toISOString(),
      },
    });
  }

  function sweep(all = false): void {
    const t = now();
    for (const [ip, w] of windows) {
      if (!all && t - w.start < windowMs) continue;
      if (w.failures + w.lockedOut > 0) {
        void summary(ip, w, t);
        windows.set(ip, { start: t, failures: 0, lockedOut: 0, reasons: {}, route: w.route, method: w.method });
      } else {
        windows.delete(ip);
      }
    }
    if (all) windows.clear();
    if (windows.size === 0 && timer) { clearInterval(timer); timer = null; }
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
    if (w.failures + w.lockedOut === 0) { windows.delete(ip); return null; }
    void summary(ip, w, t);
    const next: Window = { start: t, failures: 0, lockedOut: 0, reasons: {}, route: w.route, method: w.method };
    windows.set(ip, next);
    return next;
  }

  return {
    /** A failed authentication. Resolves once any event it causes is written. */
    fail(a: AuthFailAttempt, reason: string): Promise<void> {
      const t = now();
      const w = current(a.ip, t);
      if (w) {
        w.failures++;
        w.reasons[reason] = (w.reasons[reason] ?? 0) + 1;
        w.route = a.route;
        w.method = a.method;
        return Promise.resolve();
      }
      windows.set(a.ip, { start: t, failures: 0, lockedOut: 0, reasons: {}, route: a.route, method: a.method });
      ensureTimer();
      return write(a.ip, a.requestId, {
        action: 'auth.fail', outcome: 'denied', target: { route: a.route, method: a.method },
        detail: { reason, count: 1, reasons: { [reason]: 1 }, lockedOut: 0, aggregated: false },
      });
    },

    /** A request refused with 429 because its address is locked out; counted, never recorded on its own. */
    lockedOut(a: AuthFailAttempt): void {
      const t = now();
      const w = current(a.ip, t) ?? { start: t, failures: 0, lockedOut: 0, reasons: {}, route: a.route, method: a.method };
      w.lockedOut++;
      windows.set(a.ip, w);
      ensureTimer();
    },

    /** Writes the pending summaries now, whatever their age (shutdown, tests). */
    async flush(): Promise<void> {
      sweep(true);
      await Promise.all([...inflight]);
    },

    async close(): Promise<void> {
      closed = true;
      if (timer) { clearInterval(timer); timer = null; }
      sweep(true);
      await Promise.all([...inflight]);
    },

    /** Addresses with an open window (for tests and metrics). */
    get size() { return windows.size; },
  };
}
export type AuthFailAggregator = ReturnType<typeof authFailAggregator>;
