import {
  AuthError,
  ConflictError,
  ForbiddenError,
  HushError,
  isHushError,
  NotFoundError,
  RateLimitedError,
  TimeoutError,
  UnavailableError,
  ValidationError,
  type HushErrorOptions,
} from './errors.js';
import type { TokenSource } from './jwt-auth.js';

/**
 * How a call may be retried.
 * - `idempotent`: network errors, 429, 502, 503, 504 (GET, PUT, DELETE).
 * - `rate-limit-only`: only 429, which the server sends before doing any work
 *   (a PUT with `cas`: replaying it after a lost response would turn its own
 *   success into a spurious cas_conflict).
 * - `never`: POST and PATCH.
 */
export type RetryMode = 'idempotent' | 'rate-limit-only' | 'never';

export interface RetryPolicy {
  limit: number;
  backoffMs: number;
  maxBackoffMs: number;
  maxRetryAfterMs: number;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Send the bearer token (default true). */
  auth?: boolean;
  /** Return the body as a stream; the timeout then covers only the response headers. */
  stream?: boolean;
  /** Treat 304 as success (conditional GET). */
  allow304?: boolean;
  retry?: RetryMode;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  data: T;
  body: ReadableStream<Uint8Array> | null;
}

export interface TransportConfig {
  addr: string;
  token: string | undefined;
  /** Why there is no usable token, thrown lazily by authenticated calls. */
  tokenProblem: HushError | undefined;
  /** Machine identity: where authenticated calls get their token instead of `token` (a JWT login). */
  tokenSource?: TokenSource;
  timeoutMs: number;
  retry: RetryPolicy;
  fetch: typeof fetch;
  /** For bodies of LARGE_BODY_CHARS or more, a fetch that honours Expect: 100-continue (node:http); absent: `fetch` for all. */
  largeBodyFetch?: typeof fetch;
  /** Called with every error a call finally throws (after retries). */
  onError?: (err: HushError) => Promise<void> | void;
}

// setTimeout treats anything above 2^31-1 ms (Infinity included) as 1 ms.
const MAX_TIMER_MS = 2_147_483_647;

const IDEMPOTENT_RETRY_STATUS = new Set([502, 503, 504]);

const DEFAULT_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  500: 'internal_error',
  502: 'bad_gateway',
  503: 'unavailable',
  504: 'gateway_timeout',
};

/** Parses Retry-After (delta-seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Builds the error class matching an HTTP status. */
export function errorForStatus(
  status: number,
  code: string,
  message: string,
  opts: HushErrorOptions & { retryAfterMs?: number },
): HushError {
  const o = { ...opts, status };
  if (status === 401) return new AuthError(code, message, o);
  if (status === 403) return new ForbiddenError(code, message, o);
  if (status === 404) return new NotFoundError(code, message, o);
  if (status === 409) return new ConflictError(code, message, o);
  if (status === 429) return new RateLimitedError(code, message, o);
  if (status === 400 || status === 413 || status === 415 || status === 422) return new ValidationError(code, message, o);
  if (status >= 500) return new UnavailableError(code, message, o);
  return new HushError(code, message, o);
}

/** Backoff with "equal jitter": between half and all of the exponential step. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const step = Math.min(maxMs, baseMs * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // The signal's reason as it is (an AbortError DOMException unless the caller gave another), as fetch rejects.
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Certificate errors a private CA fixes (Node's and OpenSSL's codes). */
const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** Bodies at least this long (1 MiB of characters) are sent with Expect: 100-continue where node:http is available. */
export const LARGE_BODY_CHARS = 1024 * 1024;

/** The certificate error code behind a failed fetch, when a private CA would fix it. */
function untrustedCertificate(err: unknown): string | null {
  const code = (err as { cause?: { code?: unknown } })?.cause?.code;
  return typeof code === 'string' && UNTRUSTED_CERT.has(code) ? code : null;
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message.slice(0, 200);
  return err instanceof Error ? err.message.slice(0, 200) : 'unknown error';
}

/** The single place the SDK talks HTTP: auth header, timeout, error mapping, retries. */
/**
 * The body of a fetch Response, in a stream that keeps the Response itself
 * reachable until the body is read to its end. undici cancels the body of a
 * Response that is garbage-collected, so a caller that keeps only `.body`
 * and allocates before reading it (e.g. imports modules) would otherwise
 * read an empty stream.
 */
export function retainResponse(res: Response): ReadableStream<Uint8Array> | null {
  if (!res.body) return null;
  // Read by nobody: the reference itself is the point (see above).
  let _held: Response | null = res;
  const reader = res.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        const r = await reader.read();
        if (r.done) {
          _held = null;
          ctrl.close();
        } else {
          ctrl.enqueue(r.value);
        }
      },
      cancel(reason) {
        _held = null;
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * 20 random base-36 characters. A request id only ties log lines together,
 * so Math.random serves; Web Crypto would cost more to load than the request.
 */
function requestIdSuffix(): string {
  let out = '';
  while (out.length < 20) out += Math.random().toString(36).slice(2, 12);
  return out.slice(0, 20);
}

export function createTransport(cfg: TransportConfig) {
  const origin = (() => {
    try {
      return new URL(cfg.addr).origin;
    } catch {
      return cfg.addr;
    }
  })();

  async function attempt<T>(req: HttpRequest, requestId: string, token: string | undefined): Promise<HttpResponse<T>> {
    const url = new URL(cfg.addr + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-request-id': requestId,
      'user-agent': 'hush-sdk',
      ...req.headers,
    };
    if (req.auth !== false) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.body);
    }
    const timeoutMs = req.timeoutMs ?? cfg.timeoutMs;
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        ctrl.abort();
      },
      Math.min(timeoutMs, MAX_TIMER_MS),
    );
    const onAbort = () => ctrl.abort(req.signal!.reason);
    if (req.signal) {
      if (req.signal.aborted) {
        clearTimeout(timer);
        throw req.signal.reason;
      }
      req.signal.addEventListener('abort', onAbort, { once: true });
    }
    const errOpts = { method: req.method, path: req.path };
    let streaming = false;
    try {
      let res: Response;
      let text = '';
      try {
        // A large body goes with Expect: 100-continue over node:http (config.ts, largeBodyFetch): a server that refuses it
        // (413) says so before the body is sent, so the answer is read rather than lost to a failed write (EPIPE).
        const large = cfg.largeBodyFetch && typeof body === 'string' && body.length >= LARGE_BODY_CHARS;
        res = large
          ? await cfg.largeBodyFetch!(url, {
              method: req.method,
              headers: { ...headers, expect: '100-continue' },
              body,
              signal: ctrl.signal,
            })
          : await cfg.fetch(url, { method: req.method, headers, body, signal: ctrl.signal });
        if (req.stream && res.ok) {
          // The caller reads the body at its own pace; only the user's signal can end it now.
          clearTimeout(timer);
          streaming = true;
          return { status: res.status, headers: res.headers, data: undefined as T, body: retainResponse(res) };
        }
        text = await res.text();
      } catch (err) {
        if (req.signal?.aborted) throw req.signal.reason;
        if (timedOut) throw new TimeoutError(`no response from ${origin} within ${timeoutMs} ms`, { ...errOpts, timeoutMs });
        const cert = untrustedCertificate(err);
        // Not an outage: a retry or the fallback cache would only hide a configuration to fix.
        if (cert)
          throw new UnavailableError(
            'certificate_untrusted',
            `cannot reach the Hush server at ${origin} (${cert}: its TLS certificate is not signed by a CA ` +
              `this client trusts); give the CA certificate with HUSH_CA_FILE or the ca option`,
            { ...errOpts, cause: err },
          );
        throw new UnavailableError('network_error', `cannot reach the Hush server at ${origin} (${networkReason(err)})`, {
          ...errOpts,
          cause: err,
        });
      }
      const rid = res.headers.get('x-request-id') ?? undefined;
      let parsed: unknown = null;
      let parseFailed = false;
      if (text) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parseFailed = true;
        }
      }
      if (res.ok || (res.status === 304 && req.allow304)) {
        if (parseFailed)
          throw new HushError(
            'invalid_response',
            `the server at ${origin} answered ${req.method} ${req.path} with something that is not JSON`,
            { ...errOpts, status: res.status, requestId: rid },
          );
        return { status: res.status, headers: res.headers, data: parsed as T, body: null };
      }
      // Error bodies are {"error":{code,message,requestId,details?}}; health's 503 has {"error":"code"}; proxies send HTML.
      const e = (parsed as { error?: unknown } | null)?.error;
      let code = DEFAULT_CODES[res.status] ?? `http_${res.status}`;
      let message = `${req.method} ${req.path} failed with HTTP ${res.status}`;
      let details: Record<string, unknown> | undefined;
      let requestIdOut = rid;
      if (e && typeof e === 'object') {
        const eo = e as { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown };
        if (typeof eo.code === 'string') code = eo.code;
        if (typeof eo.message === 'string') message = eo.message;
        if (typeof eo.requestId === 'string') requestIdOut = eo.requestId;
        if (eo.details && typeof eo.details === 'object') details = eo.details as Record<string, unknown>;
      } else if (typeof e === 'string') {
        code = e;
      }
      throw errorForStatus(res.status, code, message, {
        ...errOpts,
        requestId: requestIdOut,
        details,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      });
    } finally {
      clearTimeout(timer);
      if (!streaming) req.signal?.removeEventListener('abort', onAbort);
    }
  }

  function retryDelay(err: HushError, n: number, mode: RetryMode): number | null {
    const p = cfg.retry;
    if (n >= p.limit || mode === 'never') return null;
    if (err.status === 429) {
      const after = (err as RateLimitedError).retryAfterMs;
      if (after === undefined) return backoffDelay(n, p.backoffMs, p.maxBackoffMs);
      return after <= p.maxRetryAfterMs ? after + Math.random() * 100 : null;
    }
    if (mode !== 'idempotent') return null;
    if (err.code === 'network_error' && err.status === undefined) return backoffDelay(n, p.backoffMs, p.maxBackoffMs);
    if (err.status !== undefined && IDEMPOTENT_RETRY_STATUS.has(err.status)) return backoffDelay(n, p.backoffMs, p.maxBackoffMs);
    return null;
  }

  /** Sends one logical call, retrying as the policy allows; throws a HushError. */
  async function request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    if (req.auth !== false && cfg.tokenProblem) throw cfg.tokenProblem;
    const mode = req.retry ?? (req.method === 'GET' || req.method === 'PUT' || req.method === 'DELETE' ? 'idempotent' : 'never');
    // One id for the call and all its retries, so the server log ties them together.
    const requestId = `sdk_${requestIdSuffix()}`;
    const source = req.auth !== false ? cfg.tokenSource : undefined;
    let loggedInAgain = false;
    for (let n = 0; ; n++) {
      // Outside the try: a failed login was retried by its own request already, and is this call's error.
      const used = source ? await source.get(req.signal) : undefined;
      try {
        return await attempt<T>(req, requestId, used ? used.token : cfg.token);
      } catch (err) {
        if (!isHushError(err)) throw err;
        if (used && err.status === 401) {
          source!.rejected(used.token);
          // A token older than this call may have been revoked or outlived: log in once more and repeat the call once.
          if (!used.fresh && !loggedInAgain) {
            loggedInAgain = true;
            n--;
            continue;
          }
        }
        const delay = retryDelay(err, n, mode);
        if (delay === null) {
          if (cfg.onError) await cfg.onError(err);
          throw err;
        }
        await sleep(delay, req.signal);
      }
    }
  }

  return { request, origin };
}

export type Transport = ReturnType<typeof createTransport>;
