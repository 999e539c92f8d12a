import { isAuthError, isForbiddenError, watch, type HushClient, type SecretsSnapshot } from 'hush-vault-sdk';

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
 * `hush run --watch`: the SDK's watch (conditional long-poll, jittered backoff,
 * stop on a revoked or expired token or a lost grant), restarting the child
 * only when the values it sees would differ. Errors are reported once per
 * outage, and the reconnection once; the child keeps running either way.
 * Resolves when the watch has ended (signal aborted, or stopped by an auth error).
 */
export async function watchLoop(o: WatchLoopOptions): Promise<void> {
  if (o.signal.aborted) return;
  const target = `${o.project}/${o.env}`;
  let current = o.secrets;
  let failing = false;
  let ended!: () => void;
  const done = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const stop = watch(
    {
      client: o.client,
      project: o.project,
      env: o.env,
      only: o.only,
      raw: o.raw,
      etag: o.etag ?? undefined,
      waitSeconds: o.waitSeconds,
      intervalMs: o.intervalMs,
      maxBackoffMs: o.maxBackoffMs,
      onReconnect: () => {
        failing = false;
        o.warn(`hush: watch: reconnected to the server; watching ${target} again`);
      },
    },
    async (snap) => {
      if (sameSecrets(snap.secrets, current)) return;
      current = snap.secrets;
      await o.onChange(snap);
    },
    (err) => {
      const msg = (err as Error)?.message ?? String(err);
      if (isAuthError(err) || isForbiddenError(err)) {
        o.warn(`hush: watch stopped (${msg}); the command keeps running with the values it has`);
        ended();
        return;
      }
      if (!failing) o.warn(`hush: watch: ${msg}; retrying with backoff, the command keeps running`);
      failing = true;
    },
  );
  o.signal.addEventListener(
    'abort',
    () => {
      void stop().then(ended);
    },
    { once: true },
  );
  await done;
}
