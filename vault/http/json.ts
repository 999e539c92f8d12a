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
    return parseJson(req, buf.toString('utf8'), done);
  };
}
