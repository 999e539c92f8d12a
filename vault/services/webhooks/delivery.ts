import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { ClaimedDelivery, WebhookStore } from '../../store/webhook-store.js';
import { SYSTEM_CONTEXT, type AuditService } from '../audit/audit-service.js';
import type { KeyService } from '../key/key-service.js';
import { sendWebhook, type SendResult } from './send.js';

/**
 * The delivery worker: every server runs one. It claims due deliveries
 * from the outbox under a lease (PostgreSQL: FOR UPDATE SKIP LOCKED, so two
 * servers never claim the same row), sends them, and records the outcome.
 *
 * - At least once: a row stays pending until a 2xx is recorded. A server
 *   killed mid-delivery leaves its lease to run out (LEASE_MS), and any
 *   server sends the row again.
 * - Retries back off exponentially (5 s, 10 s, 20 s … at most
 *   `maxBackoffMs`, with jitter) for 24 hours after the event, then the
 *   delivery is marked failed; `hush webhooks redeliver` sends it again.
 * - Deliveries of one webhook are not ordered: receivers use the event id
 *   (and its time) to order and to drop repeats.
 */
export interface WebhookWorkerDeps {
  store: WebhookStore;
  keys: Pick<KeyService, 'webhookSigner'>;
  audit: Pick<AuditService, 'run'>;
  log: Pick<FastifyBaseLogger, 'warn' | 'info'>;
  allowPrivate: boolean;
  maxBackoffMs: number;
  timeoutMs?: number;
  pollMs?: number;
}

export const LEASE_MS = 15_000;
export const GIVE_UP_MS = 24 * 3_600_000;
const FIRST_BACKOFF_MS = 5_000;
const BATCH = 16;

/** The wait before attempt `attempts + 1`, after `attempts` failed ones. */
export function backoffMs(attempts: number, maxMs: number): number {
  const base = Math.min(maxMs, FIRST_BACKOFF_MS * 2 ** Math.min(attempts - 1, 20));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export function webhookWorkerFactory(deps: WebhookWorkerDeps) {
  const { store, keys, audit, log, allowPrivate, maxBackoffMs } = deps;
  const timeoutMs = deps.timeoutMs ?? 5_000;
  const pollMs = deps.pollMs ?? 1_000;
  const holder = `${hostname().slice(0, 40)}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = true;
  let lastError = '';

  async function attempt(d: ClaimedDelivery): Promise<void> {
    const signer = await keys.webhookSigner();
    const t = Math.floor(Date.now() / 1000);
    const headers = {
      'user-agent': 'Hush-Webhooks/1',
      'hush-signature': signer.header(d.webhookId, d.salt, t, d.payload),
      'hush-event-id': d.eventId,
      'hush-event-type': d.eventType,
      'hush-delivery-id': String(d.id),
      'hush-delivery-attempt': String(d.attempts + 1),
    };
    const r: SendResult = await sendWebhook(d.url, d.payload, headers, { allowPrivate, timeoutMs });
    const now = Date.now();
    const ok = r.error === null;
    const attempts = d.attempts + 1;
    const giveUp = !ok && now - d.createdAt >= GIVE_UP_MS;
    const settled = await audit.run(SYSTEM_CONTEXT, (tx) =>
      store.settle(
        {
          id: d.id,
          status: ok ? 'delivered' : giveUp ? 'failed' : 'pending',
          attempts,
          nextAttemptAt: ok || giveUp ? now : now + backoffMs(attempts, maxBackoffMs),
          lastStatus: r.status,
          lastError: r.error,
          lastAttemptAt: now,
          deliveredAt: ok ? now : null,
        },
        holder,
        tx,
      ),
    );
    if (!settled)
      log.warn(
        { delivery: d.id, webhook: d.webhookId },
        'webhook delivery: the lease ran out before the outcome was recorded; another server sends it again',
      );
    else if (giveUp)
      log.warn(
        { delivery: d.id, webhook: d.webhookId, attempts },
        'webhook delivery failed for 24 hours: given up (hush webhooks redeliver sends it again)',
      );
  }

  async function round(): Promise<void> {
    do {
      again = false;
      const claimed = await audit.run(SYSTEM_CONTEXT, (tx) => store.claim(holder, Date.now(), LEASE_MS, BATCH, tx));
      await Promise.all(
        claimed.map((d) =>
          attempt(d).catch((e: Error) => {
            log.warn({ delivery: d.id, err: { message: e.message } }, 'webhook delivery attempt could not be recorded');
          }),
        ),
      );
      if (claimed.length === BATCH) again = true;
    } while (again && !stopped);
  }

  function tick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = round()
      .then(
        () => {
          lastError = '';
        },
        (e: Error) => {
          // Sealed, or the database is away: the next tick tries again.
          if (e.message !== lastError) log.warn({ err: { message: e.message } }, 'webhook deliveries paused');
          lastError = e.message;
        },
      )
      .finally(() => {
        running = null;
      });
  }

  return {
    /** Starts polling; returns the stop function (runtime timers). */
    start(): () => void {
      stopped = false;
      timer = setInterval(tick, pollMs);
      timer.unref();
      setImmediate(tick);
      return () => {
        stopped = true;
        if (timer) clearInterval(timer);
        timer = null;
      };
    },
    /** Deliveries were just committed by this server: send them now, not at the next poll. */
    kick(): void {
      if (!stopped) setImmediate(tick);
    },
    /** Resolves when the round in flight (if any) is done. */
    async settled(): Promise<void> {
      while (running) await running;
    },
  };
}
export type WebhookWorker = ReturnType<typeof webhookWorkerFactory>;
