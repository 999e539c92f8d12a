import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { HushError } from '../errors.js';

/**
 * A JSON body parser (for addContentTypeParser with parseAs 'buffer') that
 * refuses bytes that are not UTF-8 before Fastify's own
 * (prototype-poisoning-safe) parser reads them. JSON must be UTF-8
 * (RFC 8259); Node would decode invalid bytes to U+FFFD and a stored value
 * would silently differ from the one sent.
 */
export function utf8JsonParser(app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  return (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const buf = body as Buffer;
    if (!isUtf8(buf)) return done(new HushError('invalid_json', 400, 'the body is not valid UTF-8'), undefined);
    if (req.routeOptions.config?.namesAsKeys) return parseNullPrototype(buf.toString('utf8'), done);
    return parseJson(req, buf.toString('utf8'), done);
  };
}

/**
 * For a route whose body has secret names as object keys (bulk set): every
 * object is made with a null prototype, so a name such as `__proto__` or
 * `constructor` is an ordinary own key (as it is in PUT .../secrets/:key)
 * and can never reach Object.prototype. Elsewhere such a key stays refused.
 */
function parseNullPrototype(text: string, done: (err: Error | null, body?: unknown) => void): void {
  let body: unknown;
  try {
    body = JSON.parse(text, (_k, v: unknown) =>
      v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.assign(Object.create(null) as object, v) : v,
    );
  } catch {
    return done(new HushError('invalid_json', 400, 'the body is not valid JSON'), undefined);
  }
  done(null, body);
}
