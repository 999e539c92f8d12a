/**
 * One error family for the whole server. Every failure the caller can act on
 * is a HushError subclass carrying a stable `code` and an HTTP `statusCode`.
 * The HTTP error handler reads those two fields only (no instanceof chain).
 * Messages never contain secret values or token strings.
 */
export class HushError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details?: Record<string, unknown>;
  constructor(code: string, statusCode: number, message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, opts?.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'HushError';
    this.code = code;
    this.statusCode = statusCode;
    if (opts?.details) this.details = opts.details;
  }
}

const make = (code: string, status: number) =>
  class extends HushError {
    constructor(message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
      super(code, status, message, opts);
    }
  };

export const InvalidRequestError = make('invalid_request', 400);
export const InvalidNameError = make('invalid_name', 400);
export const ValueTooLargeError = make('value_too_large', 413);
export const TooManySecretsError = make('too_many_secrets', 409);
/** A write would make an environment's names and values together larger than --max-env-bytes. */
export const EnvTooLargeError = make('env_too_large', 413);
/** A bulk read of an environment that already holds more than --max-env-bytes (made before the limit, or with a higher one). */
export const EnvOverLimitError = make('env_over_limit', 409);
export const UnauthorizedError = make('unauthorized', 401);
export const ForbiddenError = make('forbidden', 403);
export const ProjectNotFoundError = make('project_not_found', 404);
export const EnvNotFoundError = make('env_not_found', 404);
export const SecretNotFoundError = make('secret_not_found', 404);
/** A revision an environment has not reached (history, diff, rollback, KV v2 `?version=`). */
export const RevisionNotFoundError = make('revision_not_found', 404);
export const TokenNotFoundError = make('token_not_found', 404);
export const AlreadyExistsError = make('already_exists', 409);
export const CasConflictError = make('cas_conflict', 409);
export const IntegrityError = make('integrity_error', 500);
export const WrongMasterKeyError = make('wrong_master_key', 500);
export const MasterKeyChangedError = make('master_key_changed', 503);
export const AuditUnavailableError = make('audit_unavailable', 503);
export const StorageUnavailableError = make('storage_unavailable', 503);
export const AlreadyInitializedError = make('already_initialized', 409);
export const NotInitializedError = make('not_initialized', 503);
/** The server holds no keys (a sealed start, or `operator seal`): unseal it (docs/keys.md). */
export const SealedError = make('sealed', 503);
/** An unseal share that cannot be used: malformed, mistyped, from another vault or share set, or given twice. */
export const InvalidShareError = make('invalid_share', 400);
/** A complete set of shares, or a passphrase, that does not open this vault's master key. */
export const UnsealFailedError = make('unseal_failed', 400);
export const NotSealedError = make('not_sealed', 409);
/** A web UI session that timed out (idle), was logged out, or whose cookie is no session: log in again (docs/ui.md). */
export const SessionExpiredError = make('session_expired', 401);
/** A request with the web UI's session cookie that changes something, from another origin (docs/ui.md#csrf). */
export const CsrfRefusedError = make('csrf_refused', 403);
/** A request carrying the web UI's session cookie more than once (one may have been planted by another page on this host: docs/ui.md). */
export const SessionAmbiguousError = make('session_ambiguous', 401);
/** The web UI's files are missing from this installation (a build without `npm run build`'s UI step). */
export const UiUnavailableError = make('ui_unavailable', 503);
export const RateLimitedError = make('rate_limited', 429);
export const ConfigError = make('config_invalid', 500);
/** A value holds a `${...}` that is not a reference (docs/lifecycle.md); `$${` writes a literal `${`. */
export const InvalidReferenceError = make('invalid_reference', 400);
/** A reference names an environment the reading token may not read. The referenced value is never disclosed. */
export const ReferenceForbiddenError = make('reference_forbidden', 403);
/** A reference names a project, environment or secret that does not exist. */
export const ReferenceNotFoundError = make('reference_not_found', 422);
/** References that lead back to where they started. */
export const ReferenceCycleError = make('reference_cycle', 422);
/** More than 8 references in a chain. */
export const ReferenceTooDeepError = make('reference_too_deep', 422);
/** Resolving references would make a value (or a read) larger than the resolver allows. */
export const ReferenceTooLargeError = make('reference_too_large', 422);

/** A member of the family: a HushError (subclasses such as BackupKeyError keep their own name), or one from another copy of this module. */
export function isHushError(e: unknown): e is HushError {
  if (e instanceof HushError) return true;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as HushError).code === 'string' &&
    typeof (e as HushError).statusCode === 'number' &&
    (e as Error).name === 'HushError'
  );
}

/** True when an error means the database itself cannot be used right now (disk, permissions, connection). */
export function isStorageFailure(e: unknown): boolean {
  const err = e as { code?: string; message?: string; name?: string };
  const code = String(err?.code ?? '');
  if (/^SQLITE_(READONLY|IOERR|CANTOPEN|FULL|BUSY|LOCKED|CORRUPT|NOTADB|PERM)/.test(code)) return true;
  // PostgreSQL: connection lost or refused, server shutting down, out of disk/memory/connections,
  // read-only (25006: a read-only standby, default_transaction_read_only) and privileges revoked (42501).
  if (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      '57P01',
      '57P02',
      '57P03',
      '08000',
      '08001',
      '08003',
      '08006',
      '08P01',
      '53300',
      '53100',
      '53200',
      '25006',
      '42501',
      '58030',
    ].includes(code)
  )
    return true;
  if (err?.name === 'KnexTimeoutError') return true;
  const msg = String(err?.message ?? '');
  return /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Timeout acquiring a connection/i.test(
    msg,
  );
}

/** The 503 a storage failure becomes. */
export function storageError(e: unknown): HushError {
  return new StorageUnavailableError('the database is unavailable right now; retry shortly', { cause: e });
}
