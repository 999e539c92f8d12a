import { createClient, type ClientOptions, type HushClient } from './client.js';
import { isAuthError, isForbiddenError } from './errors.js';
import { backoffDelay, sleep } from './http.js';
import type { SecretsSnapshot } from './types.js';

/**
 * Options of {@link watch}.
 *
 * @example
 * ```ts
 * watch({ project: 'api', env: 'prod', waitSeconds: 25, intervalMs: 1000 }, onChange);
 * ```
 */
export interface WatchOptions extends ClientOptions {
  /**
   * Project name.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod' }, onChange);
   * ```
   */
  project: string;
  /**
   * Environment name.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'staging' }, onChange);
   * ```
   */
  env: string;
  /**
   * Watch only these names.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', only: ['FEATURE_FLAGS'] }, onChange);
   * ```
   */
  only?: string[];
  /**
   * How long the server may hold each request waiting for a change, in
   * seconds (default 25, max 60). 0 turns long-polling off: plain polling
   * every `intervalMs`.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', waitSeconds: 0, intervalMs: 10_000 }, onChange);
   * ```
   */
  waitSeconds?: number;
  /**
   * Least time between the starts of two requests that found no change, in
   * milliseconds (default 1000): the polling interval when `waitSeconds` is
   * 0, and a floor on the request rate if the server answers at once. After
   * a change the next request starts immediately.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', intervalMs: 5000 }, onChange);
   * ```
   */
  intervalMs?: number;
  /**
   * Call `onChange` once with the current values when watching starts
   * (default true). With false it fires on changes only.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', initial: false }, () => process.kill(process.pid, 'SIGHUP'));
   * ```
   */
  initial?: boolean;
  /**
   * Largest wait between attempts after errors, in milliseconds (default 30 000).
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', maxBackoffMs: 60_000 }, onChange);
   * ```
   */
  maxBackoffMs?: number;
  /**
   * Values as stored: `${...}` references not resolved (default false).
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', raw: true }, onChange);
   * ```
   */
  raw?: boolean;
  /**
   * The ETag of values the caller already has (from `secrets.getAll`): the
   * first request then waits for a change from them instead of fetching them
   * again. `onChange` is called for the first values that differ.
   *
   * @example
   * ```ts
   * const snap = await client.secrets.getAll('api', 'prod');
   * watch({ project: 'api', env: 'prod', client, etag: snap.etag ?? undefined }, onChange);
   * ```
   */
  etag?: string;
  /**
   * Called once when a request succeeds after one or more errors (which went to `onError`).
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', onReconnect: () => log.info('vault reachable again') }, onChange, onError);
   * ```
   */
  onReconnect?: () => void;
  /**
   * An existing client to use instead of creating one from the options.
   *
   * @example
   * ```ts
   * watch({ project: 'api', env: 'prod', client }, onChange);
   * ```
   */
  client?: HushClient;
}

/**
 * Receives the new values and the previous ones (null for the first call).
 * Calls never overlap: the next request waits until a returned promise settles.
 */
export type WatchChangeHandler = (current: SecretsSnapshot, previous: SecretsSnapshot | null) => void | Promise<void>;

/** Receives errors; watching continues with backoff, except after an AuthError or ForbiddenError. */
export type WatchErrorHandler = (error: unknown) => void;

/** Stops watching; resolves once the loop has ended (an in-flight request is aborted). */
export type StopWatching = () => Promise<void>;

/**
 * Watches an environment and calls `onChange` whenever its revision changes.
 * Uses conditional long-polling: each request carries the last ETag
 * (If-None-Match) and `?wait=25`, so the server answers as soon as something
 * changes, or with 304 after the wait. Errors go to `onError` (default:
 * console.warn) and are retried with jittered backoff up to `maxBackoffMs`;
 * an AuthError (revoked or expired token) or a ForbiddenError (grant lost) stops the watch, since retrying
 * cannot fix it. The fallback cache is not used while watching.
 *
 * @example
 * ```ts
 * import { watch } from 'hush-vault-sdk';
 *
 * const stop = watch({ project: 'api', env: 'prod' }, (now, before) => {
 *   if (before && now.secrets.FEATURE_FLAGS !== before.secrets.FEATURE_FLAGS) reloadFlags(now.secrets.FEATURE_FLAGS);
 * }, (err) => log.warn({ err }, 'vault watch failed'));
 * process.on('SIGTERM', () => void stop());
 * ```
 */
export function watch(options: WatchOptions, onChange: WatchChangeHandler, onError?: WatchErrorHandler): StopWatching {
  const {
    project,
    env,
    only,
    raw,
    etag: since,
    onReconnect,
    waitSeconds = 25,
    intervalMs = 1000,
    initial = true,
    maxBackoffMs = 30_000,
    client: given,
    ...clientOptions
  } = options;
  const client = given ?? createClient(clientOptions);
  const wait = Math.min(60, Math.max(0, Math.floor(waitSeconds)));
  const report: WatchErrorHandler =
    onError ?? ((err) => console.warn(`hush: watching ${project}/${env}: ${(err as Error)?.message ?? String(err)}`));
  const ctrl = new AbortController();
  let prev: SecretsSnapshot | null = null;
  let etag: string | undefined = since;
  let failures = 0;

  const loop = (async () => {
    while (!ctrl.signal.aborted) {
      const started = Date.now();
      try {
        const r = await client.secrets.getAll(project, env, {
          only,
          ...(raw ? { raw: true } : {}),
          fallback: false,
          signal: ctrl.signal,
          ...(etag !== undefined ? { ifNoneMatch: etag, wait, timeoutMs: wait * 1000 + 15_000 } : {}),
        });
        if (failures > 0) onReconnect?.();
        failures = 0;
        if (!r.notModified) {
          const changed = prev === null || (r.etag && prev.etag ? r.etag !== prev.etag : r.revision !== prev.revision);
          const before = prev;
          prev = r;
          etag = r.etag ?? undefined;
          if (changed && (before !== null || initial)) {
            try {
              await onChange(r, before);
            } catch (err) {
              report(err);
            }
          }
        }
        // Nothing changed (the long-poll ran out, or the server answered at once), or
        // no ETag to wait on: pace the next request. After a change, re-arm at once.
        if (r.notModified || etag === undefined) {
          const gap = intervalMs - (Date.now() - started);
          if (gap > 0) await sleep(gap, ctrl.signal).catch(() => undefined);
        }
      } catch (err) {
        if (ctrl.signal.aborted) break;
        report(err);
        if (isAuthError(err) || isForbiddenError(err)) break;
        failures++;
        await sleep(backoffDelay(failures - 1, 1000, maxBackoffMs), ctrl.signal).catch(() => undefined);
      }
    }
  })();

  return async () => {
    ctrl.abort();
    await loop;
  };
}
