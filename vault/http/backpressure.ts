import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/**
 * Slow readers and pipelined requests (docs/security.md, "Slow readers").
 *
 * Node's HTTP server parses every request of one read at once and emits
 * them all; each handler then runs, and the answers of the pipelined ones
 * wait in memory behind the first. A client that pipelines reads of a large
 * env and never reads its socket made the server hold all those answers
 * (50 connections x 20 reads of 1.87 MB: 2 GB). Node pauses a connection
 * only once answers exist (its writable high-water mark), too late for
 * requests already parsed; Fastify has no limit of its own here. So:
 *
 * - One request of a connection is handled at a time; the next one starts
 *   when its answer has been handed to the kernel ('finish'), so a
 *   connection whose client does not read holds at most one answer.
 * - At most MAX_WAITING_REQUESTS wait behind it. The next one is answered
 *   429 too_many_pipelined_requests (in its turn, in order), reading stops,
 *   and the connection closes after that answer; nothing after it is handled.
 * - A connection that takes no byte of its answer for `stallMs` is closed.
 * - A process-wide budget: an answer of 64 KiB or more is replaced by 503
 *   server_busy (Retry-After) when the answers buffered for connections
 *   together would pass `bufferBytes`.
 */

/** Requests parsed but not yet handled that one connection may have. */
export const MAX_WAITING_REQUESTS = 32;
/** Requests after a refusal (parsed from the reads already made) before the connection is cut without answers. */
const MAX_IGNORED = 1024;
/** Answers at least this large count against the process-wide budget. */
export const LARGE_RESPONSE_BYTES = 64 * 1024;
/** Seconds a refused client is told to wait. */
const RETRY_AFTER_S = 5;

export interface BackpressureOptions {
  /** A connection whose answer makes no progress for this long is closed (--request-timeout). */
  stallMs: number;
  requestId: () => string;
  log: Pick<Logger, 'info'>;
  /** Counts a connection closed for too many pipelined requests (metrics). */
  refused?: () => void;
}

interface Connection {
  busy: boolean;
  waiting: [IncomingMessage, ServerResponse][];
  /** Set once MAX_WAITING_REQUESTS was passed: the refusal is queued, later requests are ignored. */
  refused: boolean;
  ignored: number;
  /** Last time the connection's unread answer shrank (or a request started). */
  progress: number;
  pending: number;
}

type Sock = Duplex & { _paused?: boolean; writableLength: number };

export interface Backpressure {
  /** Bytes of answers handed to connections and not yet taken by the kernel. */
  buffered(): number;
}

export function limitPipelining(server: Server, o: BackpressureOptions): Backpressure {
  const conns = new WeakMap<Sock, Connection>();
  // Connections with a request being handled: the only ones with an answer in their buffers.
  const active = new Map<Sock, Connection>();
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');

  const start = (
    sock: Sock,
    c: Connection,
    req: IncomingMessage,
    res: ServerResponse,
    handle: (req: IncomingMessage, res: ServerResponse) => void,
  ) => {
    c.busy = true;
    c.progress = Date.now();
    c.pending = 0;
    active.set(sock, c);
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      c.busy = false;
      active.delete(sock);
      next(sock, c);
    };
    res.once('finish', end);
    res.once('close', end);
    handle(req, res);
  };
  const handleAll = (req: IncomingMessage, res: ServerResponse) => {
    for (const h of handlers) h.call(server, req, res);
  };
  const next = (sock: Sock, c: Connection) => {
    if (sock.destroyed) {
      c.waiting.length = 0;
      return;
    }
    const item = c.waiting.shift();
    if (!item) return;
    const last = c.refused && c.waiting.length === 0;
    start(sock, c, item[0], item[1], last ? refuse : handleAll);
  };
  const refuse = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = o.requestId();
    o.refused?.();
    o.log.info(
      { reqId: requestId, remoteAddress: req.socket.remoteAddress, limit: MAX_WAITING_REQUESTS },
      'too many pipelined requests on one connection: answered 429 and closed',
    );
    const body = JSON.stringify({
      error: {
        code: 'too_many_pipelined_requests',
        message:
          `more than ${MAX_WAITING_REQUESTS} requests were` +
          ` sent ahead on one connection without reading` +
          (` their answers; this connection is closed: send` + ` fewer at a time, or read the answers first`),
        requestId,
      },
    });
    res.writeHead(429, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
      'retry-after': String(RETRY_AFTER_S),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'close',
    });
    res.end(body);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const sock = req.socket as Sock;
    let c = conns.get(sock);
    if (!c) {
      c = { busy: false, waiting: [], refused: false, ignored: 0, progress: 0, pending: 0 };
      conns.set(sock, c);
      const conn = c;
      sock.on('drain', () => {
        conn.progress = Date.now();
      });
    }
    if (c.refused) {
      // Parsed from the same read as the refused one (at most one read's worth): never handled. A client that keeps sending is cut off.
      if (++c.ignored > MAX_IGNORED) sock.destroy();
      return;
    }
    if (!c.busy) {
      start(sock, c, req, res, handleAll);
      return;
    }
    c.waiting.push([req, res]);
    if (c.waiting.length > MAX_WAITING_REQUESTS) {
      c.refused = true;
      // Read nothing more (as Node pauses a connection itself: it resumes only after a drain, and the refusal closes it).
      sock._paused = true;
      sock.pause();
    }
  });

  // Stalled answers: a connection whose unread answer has not shrunk for stallMs.
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [sock, c] of active) {
        const n = sock.writableLength;
        if (n === 0 || n < c.pending) c.progress = now;
        c.pending = n;
        if (n > 0 && now - c.progress > o.stallMs) {
          o.log.info(
            { remoteAddress: (sock as unknown as { remoteAddress?: string }).remoteAddress, unreadBytes: n },
            'connection closed: its client read nothing of the answer within --request-timeout',
          );
          sock.destroy();
        }
      }
    },
    Math.max(250, Math.min(5_000, Math.floor(o.stallMs / 4))),
  );
  sweep.unref();
  server.once('close', () => clearInterval(sweep));

  return {
    buffered() {
      let n = 0;
      for (const sock of active.keys()) n += sock.writableLength;
      return n;
    },
  };
}

/**
 * `Expect: 100-continue` (the SDK sends it with large bodies): a body over
 * --body-limit is refused with 413 before the client sends a byte of it,
 * and the connection is closed (its body will not follow). So the client
 * reads the answer instead of failing to write a body (EPIPE) that the
 * server does not want. Otherwise Node's own answer: 100 Continue, and the
 * request goes on as usual.
 */
export function refuseLargeBodiesEarly(server: Server, bodyLimit: number, requestId: () => string): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const length = Number(req.headers['content-length']);
    if (!(length > bodyLimit)) {
      res.writeContinue();
      server.emit('request', req, res);
      return;
    }
    const id = requestId();
    const body = JSON.stringify({
      error: {
        code: 'payload_too_large',
        message: `request body is larger than the server's limit of ${bodyLimit} bytes (--body-limit): send less at a time`,
        requestId: id,
      },
    });
    res.writeHead(413, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-request-id': id,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'close',
    });
    res.end(body);
  });
}

/**
 * The process-wide budget, as an onSend hook: a large answer that would take
 * the bytes buffered for connections past `bufferBytes` becomes 503
 * server_busy. Streams (backups) are not counted: they are written as the
 * client reads.
 */
export function responseBudget(app: FastifyInstance, bp: Backpressure, bufferBytes: number): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    const size =
      typeof payload === 'string'
        ? payload.length >= LARGE_RESPONSE_BYTES / 3
          ? Buffer.byteLength(payload)
          : 0
        : Buffer.isBuffer(payload)
          ? payload.length
          : 0;
    if (size < LARGE_RESPONSE_BYTES || bp.buffered() + size <= bufferBytes) {
      done(null, payload);
      return;
    }
    req.log.info(
      { buffered: bp.buffered(), size, limit: bufferBytes },
      'answer refused: the answers waiting for slow clients fill --response-buffer-limit',
    );
    reply
      .code(503)
      .header('content-type', 'application/json; charset=utf-8')
      .header('retry-after', String(RETRY_AFTER_S))
      .removeHeader('etag')
      .removeHeader('content-disposition');
    done(
      null,
      JSON.stringify({
        error: {
          code: 'server_busy',
          message: 'the server holds too many answers that clients have not read yet (--response-buffer-limit); retry later',
          requestId: req.id,
        },
      }),
    );
  });
}
