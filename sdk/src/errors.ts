/**
 * The SDK's error family: one class per concept, all in this one module so
 * importing the SDK stays cheap. Every class carries the server's stable
 * `code`, the HTTP `status` and the `requestId`.
 */
/**
 * Registry symbol stamped on every SDK error. `Symbol.for` returns the same
 * symbol in every realm and in every copy of the package, so the type guards
 * keep working where `instanceof` does not (worker threads, vm contexts,
 * two installed copies of `hush`).
 */
export const HUSH_ERROR_BRAND = Symbol.for('hush.sdk.error');

/**
 * Fields every SDK error can carry besides its code and message.
 *
 * @example
 * ```ts
 * new HushError('invalid_response', 'the server did not answer with JSON', { status: 200 });
 * ```
 */
export interface HushErrorOptions {
  /** HTTP status of the response, or `undefined` when no response arrived (network error, timeout, offline checks). */
  status?: number;
  /** The server's request id (`x-request-id`), to quote when reading server logs. */
  requestId?: string;
  /** Structured detail from the server, e.g. `{ current: 3 }` for a `cas_conflict`. Never contains secret values. */
  details?: Record<string, unknown>;
  /** HTTP method of the failed call. */
  method?: string;
  /** URL path of the failed call (no query string, no host). */
  path?: string;
  /** The underlying error (a fetch `TypeError` for network failures). */
  cause?: unknown;
}

/**
 * Base class of every error the SDK throws. `code` is the server's stable
 * snake_case code (see docs/errors.md) or one of the SDK's own:
 * `network_error`, `certificate_untrusted`, `timeout`, `token_malformed`, `token_missing`,
 * `invalid_config`, `invalid_response`.
 *
 * Messages never contain a token or a secret value.
 *
 * @example
 * ```ts
 * import { createClient, isHushError } from 'hush-vault-sdk';
 * try {
 *   await createClient().secrets.get('api', 'prod', 'DATABASE_URL');
 * } catch (err) {
 *   if (isHushError(err)) console.error(err.code, err.status, err.requestId);
 *   else throw err;
 * }
 * ```
 */
export class HushError extends Error {
  /** Stable machine-readable code, e.g. `secret_not_found`. */
  readonly code: string;
  /** HTTP status, or `undefined` when the server never answered. */
  readonly status: number | undefined;
  /** Server request id, when the server answered. */
  readonly requestId: string | undefined;
  /** Structured detail from the server (no secret values). */
  readonly details: Record<string, unknown> | undefined;
  /** HTTP method of the failed call. */
  readonly method: string | undefined;
  /** URL path of the failed call. */
  readonly path: string | undefined;

  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'HushError';
    this.code = code;
    this.status = options.status;
    this.requestId = options.requestId;
    this.details = options.details;
    this.method = options.method;
    this.path = options.path;
    Object.defineProperty(this, HUSH_ERROR_BRAND, { value: true });
  }
}

/**
 * The server rejected the token (401 `unauthorized`: missing, unknown, expired, revoked, or
 * outside its CIDR allowlist), or the SDK refused it before sending: `token_malformed` (bad
 * checksum, checked offline) and `token_missing` (no token given and no HUSH_TOKEN). Retrying
 * does not help; get a new token.
 *
 * @example
 * ```ts
 * try { await client.tokens.self(); }
 * catch (err) { if (isAuthError(err)) console.error('log in again:', err.code); else throw err; }
 * ```
 */
export class AuthError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'AuthError';
  }
}

/**
 * 403 `forbidden`: the token is valid but lacks the grant the call needs (for example
 * `read:api/prod`). The message names the missing grant.
 * 403 `reference_forbidden`: a value read holds a `${...}` reference to an env the
 * token may not read; the message names the reference (never its value).
 *
 * @example
 * ```ts
 * try { await client.secrets.getAll('api', 'prod'); }
 * catch (err) { if (isForbiddenError(err)) console.error(err.message); else throw err; }
 * ```
 */
export class ForbiddenError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ForbiddenError';
  }
}

/**
 * 404: `project_not_found`, `env_not_found`, `secret_not_found`, `revision_not_found`, `token_not_found` or
 * `route_not_found` (an older server without this endpoint).
 *
 * @example
 * ```ts
 * const value = await client.secrets.get('api', 'prod', 'MAYBE')
 *   .then((s) => s.value)
 *   .catch((err) => { if (isNotFoundError(err)) return undefined; throw err; });
 * ```
 */
export class NotFoundError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'NotFoundError';
  }
}

/**
 * 409: `cas_conflict` (the check-and-set version did not match; `details.current` holds the
 * current version), `already_exists` or `too_many_secrets`.
 *
 * @example
 * ```ts
 * try { await client.secrets.set('api', 'prod', 'COUNTER', '2', { cas: 1 }); }
 * catch (err) {
 *   if (isConflictError(err) && err.code === 'cas_conflict') console.log('now at version', err.details?.current);
 *   else throw err;
 * }
 * ```
 */
export class ConflictError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ConflictError';
  }
}

/**
 * 429 `rate_limited`: too many requests, or too many failed authentications
 * from this address. `retryAfterMs` is the server's Retry-After. Idempotent
 * calls are retried automatically when the wait is at most
 * `retries.maxRetryAfterMs`; this error means the SDK gave up.
 *
 * @example
 * ```ts
 * try { await client.projects.list(); }
 * catch (err) {
 *   if (isRateLimitedError(err)) await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 1000));
 *   else throw err;
 * }
 * ```
 */
export class RateLimitedError extends HushError {
  /** Milliseconds the server asked us to wait (from Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: HushErrorOptions & { retryAfterMs?: number } = {}) {
    super(code, message, options);
    this.name = 'RateLimitedError';
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The request was refused as invalid: 400 (`invalid_request`, `invalid_name`, `invalid_json`),
 * 413 (`payload_too_large`, `value_too_large`), 415, or 422 (`reference_not_found`,
 * `reference_cycle`, `reference_too_deep`: a `${...}` reference in a value cannot be resolved). Also thrown before any request for a bad
 * client option (`invalid_config`). Fix the input; retrying does not help.
 *
 * @example
 * ```ts
 * try { await client.projects.create('Not A Valid Name'); }
 * catch (err) { if (isValidationError(err)) console.error(err.code, err.message); else throw err; }
 * ```
 */
export class ValidationError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ValidationError';
  }
}

/**
 * The server could not serve the call: any 5xx (`storage_unavailable`, `audit_unavailable`,
 * `internal_error`, a proxy's 502/504) or `network_error` when no response arrived at all
 * (connection refused, reset, DNS). Idempotent calls were already retried before this is thrown.
 *
 * @example
 * ```ts
 * try { await client.health(); }
 * catch (err) { if (isUnavailableError(err)) console.error('vault down:', err.code); else throw err; }
 * ```
 */
export class UnavailableError extends HushError {
  constructor(code: string, message: string, options: HushErrorOptions = {}) {
    super(code, message, options);
    this.name = 'UnavailableError';
  }
}

/**
 * Code `timeout`: no complete response within `timeoutMs`. A timed-out call
 * is not retried (the timeout bounds how long a call can take), but with a
 * fallback cache configured `secrets.getAll` serves the cache instead.
 *
 * @example
 * ```ts
 * try { await client.secrets.getAll('api', 'prod', { timeoutMs: 2000 }); }
 * catch (err) { if (isTimeoutError(err)) console.error('vault too slow'); else throw err; }
 * ```
 */
export class TimeoutError extends HushError {
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  constructor(message: string, options: HushErrorOptions & { timeoutMs: number }) {
    super('timeout', message, options);
    this.name = 'TimeoutError';
    this.timeoutMs = options.timeoutMs;
  }
}

// The guards check the registry brand and then `name`, never `instanceof`,
// so an error from another realm or another copy of the SDK still matches.

/**
 * True for any error thrown by the SDK, from any realm or copy of the package.
 *
 * @example
 * ```ts
 * catch (err) { if (isHushError(err)) console.error(`${err.code}: ${err.message}`); }
 * ```
 */
export function isHushError(error: unknown): error is HushError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Record<symbol, unknown>)[HUSH_ERROR_BRAND] === true &&
    typeof (error as HushError).code === 'string'
  );
}

const named = (error: unknown, name: string) => isHushError(error) && error.name === name;

/**
 * True for an {@link AuthError} (401, `token_malformed`, `token_missing`).
 *
 * @example
 * ```ts
 * catch (err) { if (isAuthError(err)) process.exit(77); }
 * ```
 */
export function isAuthError(error: unknown): error is AuthError {
  return named(error, 'AuthError');
}

/**
 * True for a {@link ForbiddenError} (403).
 *
 * @example
 * ```ts
 * catch (err) { if (isForbiddenError(err)) console.error('missing grant:', err.message); }
 * ```
 */
export function isForbiddenError(error: unknown): error is ForbiddenError {
  return named(error, 'ForbiddenError');
}

/**
 * True for a {@link NotFoundError} (404).
 *
 * @example
 * ```ts
 * catch (err) { if (isNotFoundError(err) && err.code === 'secret_not_found') return undefined; }
 * ```
 */
export function isNotFoundError(error: unknown): error is NotFoundError {
  return named(error, 'NotFoundError');
}

/**
 * True for a {@link ConflictError} (409).
 *
 * @example
 * ```ts
 * catch (err) { if (isConflictError(err) && err.code === 'cas_conflict') retryWith(err.details?.current); }
 * ```
 */
export function isConflictError(error: unknown): error is ConflictError {
  return named(error, 'ConflictError');
}

/**
 * True for a {@link RateLimitedError} (429).
 *
 * @example
 * ```ts
 * catch (err) { if (isRateLimitedError(err)) console.error(`retry in ${err.retryAfterMs} ms`); }
 * ```
 */
export function isRateLimitedError(error: unknown): error is RateLimitedError {
  return named(error, 'RateLimitedError');
}

/**
 * True for an {@link UnavailableError} (5xx or `network_error`).
 *
 * @example
 * ```ts
 * catch (err) { if (isUnavailableError(err)) console.error('vault unreachable'); }
 * ```
 */
export function isUnavailableError(error: unknown): error is UnavailableError {
  return named(error, 'UnavailableError');
}

/**
 * True for a {@link TimeoutError} (code `timeout`).
 *
 * @example
 * ```ts
 * catch (err) { if (isTimeoutError(err)) console.error(`no answer in ${err.timeoutMs} ms`); }
 * ```
 */
export function isTimeoutError(error: unknown): error is TimeoutError {
  return named(error, 'TimeoutError');
}

/**
 * True for a {@link ValidationError} (400, 413, 415, `invalid_config`).
 *
 * @example
 * ```ts
 * catch (err) { if (isValidationError(err)) console.error('bad input:', err.message); }
 * ```
 */
export function isValidationError(error: unknown): error is ValidationError {
  return named(error, 'ValidationError');
}
