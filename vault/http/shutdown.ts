import type { FastifyInstance } from 'fastify';

const closing = new WeakSet<FastifyInstance>();

/** True once `app.close()` has begun: long-polls end at once (304) instead of waiting out their timeout. */
export function isClosing(app: FastifyInstance): boolean {
  return closing.has(app);
}

/**
 * A graceful close that takes as long as the slowest in-flight response, not
 * the keep-alive timeout. Fastify's close reaps the connections idle at that
 * moment and answers new requests 503; a connection whose response is still
 * in flight would stay open after it, until the client or keepAliveTimeout
 * (72 s) ends it. So, once closing, every response says `Connection: close`
 * (Node ends the socket after it), and after each response the connections
 * that have become idle are closed.
 */
export function drainOnClose(app: FastifyInstance): void {
  app.addHook('preClose', (done) => {
    closing.add(app);
    done();
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (closing.has(app) && req.raw.httpVersionMajor === 1) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onResponse', (_req, _reply, done) => {
    if (closing.has(app)) app.server.closeIdleConnections();
    done();
  });
}
