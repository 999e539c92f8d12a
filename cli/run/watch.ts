import { setTimeout as sleep } from 'node:timers/promises';
import { isAuthError, isForbiddenError, type HushClient, type SecretsSnapshot } from 'hush-vault-sdk';

/** Backoff with "equal jitter": between half and all of the exponential step. */
const backoffDelay = (attempt: number, baseMs: number, maxMs: number): number => {
  const step = Math.min(maxMs, baseMs * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
};

export interface WatchLoopOptions {
  client: HushClient;
  project: string;
  env: string;
  only: string[] | undefined;
  raw?: boolean;
  /** ETag of the values the child was started with; null when they came from the fallback cache. */
  etag: string | null;
  /** The values the child was started with. */
  secrets: Record<string, string>;
  /** Long-poll length in seconds. */
  waitSeconds?: number;
  /** Least time between two requests that found nothing new, and the poll interval without an ETag. */
  intervalMs?: number;
  maxBackoffMs?: number;
  /** Called with new values; the loop waits for it (the restart) before asking again. */
  onChange: (snap: SecretsSnapshot) => Promise<void>;
  warn: (message: string) => void;
  signal: AbortSignal;
}

export function sameSecrets(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

/**
 * Long-polls the environment (If-None-Match + ?wait) and calls onChange when
 * the values the child sees would differ. Errors back off with jitter up to
 * maxBackoffMs and are reported once per outage; a revoked or expired token
 * (or a lost grant) ends the watch while the child keeps running.
 */
export async function watchLoop(o: WatchLoopOptions): Promise<void> {
  const wait = o.waitSeconds ?? 25;
  const intervalMs = o.intervalMs ?? 1000;
  const maxBackoffMs = o.maxBackoffMs ?? 30_000;
  let etag = o.etag;
  let current = o.secrets;
  let failures = 0;
  const target = `${o.project}/${o.env}`;
  const pause = (ms: number) => sleep(ms, undefined, { signal: o.signal }).catch(() => undefined);
  while (!o.signal.aborted) {
    const started = Date.now();
    try {
      const r = await o.client.secrets.getAll(o.project, o.env, {
        only: o.only, ...(o.raw ? { raw: true } : {}), fallback: false, signal: o.signal,
        ...(etag ? { ifNoneMatch: etag, wait, timeoutMs: wait * 1000 + 15_000 } : {}),
      });
      if (failures > 0) o.warn(`hush: watch: reconnected to the server; watching ${target} again`);
      failures = 0;
      if (!r.notModified) {
        etag = r.etag;
        if (!sameSecrets(r.secrets, current)) {
          current = r.secrets;
          await o.onChange(r);
          continue;
        }
      }
      if (r.notModified || !etag) {
        const gap = intervalMs - (Date.now() - started);
        if (gap > 0) await pause(gap);
      }
    } catch (err) {
      if (o.signal.aborted) return;
      const msg = (err as Error)?.message ?? String(err);
      if (isAuthError(err) || isForbiddenError(err)) {
        o.warn(`hush: watch stopped (${msg}); the command keeps running with the values it has`);
        return;
      }
      if (failures === 0) o.warn(`hush: watch: ${msg}; retrying with backoff, the command keeps running`);
      failures++;
      await pause(backoffDelay(failures - 1, 1000, maxBackoffMs));
    }
  }
}
