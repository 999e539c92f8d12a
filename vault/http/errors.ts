import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isHushError, isStorageFailure } from '../errors.js';
import { redactTokens } from '../services/token/redact.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; details?: Record<string, unknown> };
}

/** Fastify's own failures, mapped onto stable codes. */
const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', "request body is larger than the server's limit (--body-limit)"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'send JSON with Content-Type: application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_request', 'Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'the body is empty but Content-Type is application/json'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'the body is not valid JSON'],
  FST_ERR_BAD_URL: [400, 'invalid_request', 'the URL is malformed (bad percent-encoding)'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long', 'a path segment is longer than 300 characters'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'invalid_request', 'the request could not be routed'],
};

/** What a schema pattern asks for, in words (a regular expression is no message for a person). */
const PATTERN_WORDS: Record<string, string> = {
  '^[a-z0-9][a-z0-9._-]{0,62}$': 'lower-case letters, digits, ".", "_" and "-", up to 63 characters, starting with a letter or ' + 'digit',
  '^[A-Za-z_][A-Za-z0-9_]*$': 'letters, digits and "_", not starting with a digit',
  '^tok_[0-9A-Za-z]{1,40}$': 'a token id: "tok_" and letters or digits (hush tokens list shows them)',
  '^[0-9a-fA-F]{64}$': '64 hexadecimal digits',
  '^[^\\u0000-\\u001f]+$': 'text without control characters',
};

interface SchemaError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Names the part of the request a schema error is about, as a client sees it. */
/** What the URL parameters are, in words. */
const PARAM_WORDS: Record<string, string> = { p: 'project name', e: 'environment name', key: 'secret name', id: 'id' };

function where(context: string | undefined, path: string): string {
  const name = path.replace(/^\//, '').replace(/\//g, '.');
  if (context === 'params') return name ? `the ${PARAM_WORDS[name] ?? name} in the URL path` : 'the URL path';
  if (context === 'querystring') return name ? `query parameter "${name}"` : 'the query string';
  if (context === 'headers') return name ? `header ${name}` : 'the headers';
  return name ? `field "${name}" of the body` : 'the body';
}

/** One readable sentence for a request that failed its route's schema (never the raw "params/id must match pattern ..."). */
export function schemaMessage(errors: unknown, context: string | undefined): string {
  const first = (Array.isArray(errors) ? errors[0] : undefined) as SchemaError | undefined;
  if (!first) return 'the request does not match what this route accepts';
  const at = where(context, first.instancePath ?? '');
  const p = first.params ?? {};
  switch (first.keyword) {
    case 'pattern': {
      const pat = String(p.pattern);
      const number = pat.startsWith('^[1-9]') ? 'a positive whole number' : pat.startsWith('^[0-9]') ? 'a whole number' : undefined;
      return `${at} must be ${PATTERN_WORDS[pat] ?? number ?? 'in the expected format'}`;
    }
    case 'required':
      return `${at} is missing "${String(p.missingProperty)}"`;
    case 'additionalProperties':
      return `${at} has an unknown field "${String(p.additionalProperty).slice(0, 64)}"`;
    case 'type':
      return `${at} must be ${/^[aeiou]/.test(String(p.type)) ? 'an' : 'a'} ${String(p.type)}`;
    case 'enum':
      return `${at} must be one of: ` + `${(p.allowedValues as unknown[] | undefined)?.map(String).join(', ') ?? 'the allowed values'}`;
    case 'maxLength':
      return `${at} must be at most ${String(p.limit)} characters`;
    case 'minLength':
      return Number(p.limit) === 1 ? `${at} must not be empty` : `${at} must be at least ${String(p.limit)} characters`;
    case 'maxItems':
      return `${at} must have at most ${String(p.limit)} entries`;
    case 'minItems':
      return `${at} must have at least ${String(p.limit)} ${Number(p.limit) === 1 ? 'entry' : 'entries'}`;
    case 'maximum':
      return `${at} must be at most ${String(p.limit)}`;
    case 'minimum':
      return `${at} must be at least ${String(p.limit)}`;
    case 'maxProperties':
      return `${at} must have at most ${String(p.limit)} entries`;
    default:
      return `${at} ${String(first.message ?? 'is not valid').slice(0, 200)}`;
  }
}

/**
 * The client closed its connection (or the server's request timeout closed
 * it) while its request body was still arriving: Node's "aborted" error,
 * which Fastify's body reader hands on with status 400. Its code,
 * ECONNRESET, is also a database driver's "connection lost", so this is told
 * apart first: a client hanging up is not a storage outage.
 */
export function isClientAbort(err: unknown, req?: FastifyRequest): boolean {
  const e = err as { code?: string; message?: string; statusCode?: number } | null;
  if (!e || (e.code !== 'ECONNRESET' && e.code !== 'ERR_STREAM_PREMATURE_CLOSE')) return false;
  return e.message === 'aborted' || e.statusCode === 400 || !!req?.raw.destroyed;
}

export function toErrorBody(err: unknown, requestId: string, req?: FastifyRequest): { status: number; body: ErrorBody } {
  if (isClientAbort(err, req)) {
    return {
      status: 400,
      body: { error: { code: 'request_aborted', message: 'the client closed the connection before the request was read', requestId } },
    };
  }
  if (isHushError(err)) {
    // Messages name what the request named (a project, a secret): a token pasted there is blanked.
    const body: ErrorBody = { error: { code: err.code, message: redactTokens(err.message), requestId } };
    if (err.details) body.error.details = err.details;
    return { status: err.statusCode, body };
  }
  const e = err as FastifyError & { validation?: unknown; validationContext?: string };
  if (e && e.validation) {
    return {
      status: 400,
      body: {
        error: {
          code: 'invalid_request',
          message: redactTokens(schemaMessage(e.validation, e.validationContext)).slice(0, 300),
          requestId,
        },
      },
    };
  }
  if (e && typeof e.code === 'string' && FASTIFY_CODES[e.code]) {
    const [status, code, message] = FASTIFY_CODES[e.code];
    return { status, body: { error: { code, message, requestId } } };
  }
  if (e instanceof SyntaxError || (e && e.statusCode === 400 && /JSON/i.test(e.message))) {
    return { status: 400, body: { error: { code: 'invalid_json', message: 'the body is not valid JSON', requestId } } };
  }
  if (e && e.statusCode === 429) {
    return {
      status: 429,
      body: { error: { code: 'rate_limited', message: 'too many requests; retry after the time in Retry-After', requestId } },
    };
  }
  // PostgreSQL refuses NUL (and invalid byte sequences) in text. Only request
  // input can carry one, so it is the caller's error, never a server fault.
  if (e && (e.code === '22021' || e.code === '22P05')) {
    return {
      status: 400,
      body: { error: { code: 'invalid_request', message: 'the request contains a character that cannot be stored (NUL)', requestId } },
    };
  }
  if (isStorageFailure(err)) {
    return {
      status: 503,
      body: { error: { code: 'storage_unavailable', message: 'the database is unavailable right now; retry shortly', requestId } },
    };
  }
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { error: { code: 'invalid_request', message: 'the request was rejected', requestId } } };
  }
  return {
    status: 500,
    body: { error: { code: 'internal_error', message: 'internal error; the server log has details under this requestId', requestId } },
  };
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const { status, body } = toErrorBody(err, req.id, req);
  if (body.error.code === 'payload_too_large')
    body.error.message =
      `request body is larger than the server's limit of ` +
      `${req.server.initialConfig.bodyLimit ?? 'the configured'} bytes (--body-limit): send less at a time`;
  if (body.error.code === 'request_aborted') {
    // Nobody is left to answer; one debug line, so a flood of hang-ups is not a flood of log lines.
    req.log.debug({ errorCode: 'request_aborted' }, 'the client closed the connection before its request was read');
    return reply.status(status).send(body);
  }
  if (body.error.code === 'sealed') {
    // Expected while sealed (a balancer's probes, clients retrying): one info line, no stack.
    req.log.info({ errorCode: 'sealed' }, 'refused: the vault is sealed');
  } else if (status >= 500) {
    // Log the class and code, not the raw error object: driver errors can carry bound parameters.
    req.log.error(
      {
        err: {
          type: err?.name,
          code: (err as { code?: string })?.code,
          message: String(err?.message ?? '').slice(0, 500),
          stack: err?.stack,
        },
        errorCode: body.error.code,
      },
      'request failed',
    );
  }
  if (status === 429 && !reply.hasHeader('retry-after')) reply.header('retry-after', '60');
  return reply.status(status).send(body);
}
