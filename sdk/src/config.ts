// How createClient turns its options and HUSH_* variables into a transport: address, retries, token, TLS.
import { closeSync, openSync, readSync } from 'node:fs';
import { isHushError, ValidationError } from './errors.js';
import type { RetryPolicy } from './http.js';
import { createNodeFetch, NODE_FETCH } from './node-fetch.js';
import type { ClientOptions, RetryOptions } from './options.js';

export function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
}

export function normaliseAddr(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new ValidationError(
      'invalid_config',
      `the server address "${raw.slice(0, 200)}" is not a URL (expected e.g. https://vault.example.com:8420)`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ValidationError('invalid_config', `the server address must use http or https, not ${u.protocol}`);
  if (u.username || u.password)
    throw new ValidationError(
      'invalid_config',
      'the server address must not contain credentials; pass the token as { token } or HUSH_TOKEN',
    );
  if (u.search || u.hash) throw new ValidationError('invalid_config', 'the server address must not contain a query string or fragment');
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

/** The longest delay a timer holds (2^31-1 ms, about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function positive(name: string, v: number | undefined, dflt: number, allowZero = false, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!allowZero && v === 0))
    throw new ValidationError('invalid_config', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  if (v > max)
    throw new ValidationError(
      'invalid_config',
      `${name} must be at most ${max}${max === MAX_TIMER_MS ? ' ms (about 24.8 days: the longest delay a timer holds)' : ''}`,
    );
  return v;
}

export function retryPolicy(r: ClientOptions['retries']): RetryPolicy {
  const o: RetryOptions = typeof r === 'number' ? { limit: r } : (r ?? {});
  return {
    limit: Math.floor(positive('retries.limit', o.limit, 2, true)),
    backoffMs: positive('retries.backoffMs', o.backoffMs, 250, true, MAX_TIMER_MS),
    maxBackoffMs: positive('retries.maxBackoffMs', o.maxBackoffMs, 5000, true, MAX_TIMER_MS),
    maxRetryAfterMs: positive('retries.maxRetryAfterMs', o.maxRetryAfterMs, 60_000, true, MAX_TIMER_MS),
  };
}

const SMALL_FILE_MAX = 1_048_576;

/**
 * Reads a token or CA file, at most 1 MiB. It may be a pipe (`<(pass show
 * hush)`), so the size is what was read, not what stat says: a device or a
 * wrong path (/dev/zero, a log) fails instead of filling memory.
 */
function readSmallFile(path: string, what: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(65_536);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > SMALL_FILE_MAX) throw new ValidationError('invalid_config', `${what} ${path} is larger than 1 MiB`);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (isHushError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ValidationError('invalid_config', `cannot read ${what} ${path} (${code})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The token and where it came from: the `token` option, the `tokenFile` option, HUSH_TOKEN, HUSH_TOKEN_FILE, in that order. */
export function tokenFrom(options: ClientOptions): { token: string | undefined; source: string } {
  if (options.token === null) return { token: undefined, source: 'none' };
  if (options.token !== undefined) return { token: options.token, source: 'the token given to createClient' };
  if (options.tokenFile !== undefined)
    return { token: readSmallFile(options.tokenFile, 'the token file'), source: `the token file ${options.tokenFile}` };
  const fromEnv = env('HUSH_TOKEN');
  if (fromEnv !== undefined) return { token: fromEnv, source: 'HUSH_TOKEN' };
  const file = env('HUSH_TOKEN_FILE');
  if (file === undefined) return { token: undefined, source: 'none' };
  return { token: readSmallFile(file, 'HUSH_TOKEN_FILE'), source: `HUSH_TOKEN_FILE ${file}` };
}

/** The fetch to use: the caller's, one that trusts a private CA, or the global fetch. */
export function fetchFor(options: ClientOptions): typeof fetch {
  const caFile = options.caFile ?? (options.ca === undefined ? env('HUSH_CA_FILE') : undefined);
  if (options.fetch && (options.ca !== undefined || options.caFile !== undefined)) {
    throw new ValidationError(
      'invalid_config',
      'give either { fetch } or { ca }/{ caFile }, not both: a custom fetch brings its own TLS settings',
    );
  }
  if (options.fetch) return options.fetch;
  let ca = options.ca;
  if (caFile !== undefined) {
    const what = options.caFile !== undefined ? 'the CA file' : 'HUSH_CA_FILE';
    ca = readSmallFile(caFile, what);
    if (!/-----BEGIN CERTIFICATE-----/.test(ca))
      throw new ValidationError('invalid_config', `${what} ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  if (ca !== undefined) {
    if (typeof ca !== 'string' && !(Array.isArray(ca) && ca.every((c) => typeof c === 'string')))
      throw new ValidationError('invalid_config', 'ca must be PEM text or an array of PEM texts');
    return createNodeFetch({ ca });
  }
  return (input, init) => globalThis.fetch(input, init);
}

/**
 * The fetch for large bodies (Expect: 100-continue, http.ts): node:http on
 * Node (the global fetch cannot wait for 100 Continue), with the CA options
 * of `fetchFor`; none with a caller's own fetch (unless createNodeFetch made
 * it) or outside Node.
 */
export function largeBodyFetchFor(options: ClientOptions, fetch: typeof globalThis.fetch): typeof globalThis.fetch | undefined {
  // A fetch from createNodeFetch (the CLI's, or one with a CA) honours it; a caller's other fetch is used as it is.
  if ((fetch as { [NODE_FETCH]?: true })[NODE_FETCH]) return fetch;
  if (options.fetch || typeof process === 'undefined' || !process.versions?.node) return undefined;
  return createNodeFetch();
}
