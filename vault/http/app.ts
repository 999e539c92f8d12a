import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Container } from '../container.js';
import { HushError, SealedError } from '../errors.js';
import { redactTokens } from '../services/token/redact.js';
import type { SharedRateLimit } from '../services/limits/rate-limit.js';
import { webhookRoutes } from './routes/webhooks.js';
import { clientRequestId, registerAuth } from './auth.js';
import { errorHandler } from './errors.js';
import { utf8JsonParser } from './json.js';
import { historyRoutes } from './routes/history.js';
import { kvRoutes } from './routes/kv.js';
import { acceptListMethod } from './list-method.js';
import { auditRoutes } from './routes/audit.js';
import { projectRoutes } from './routes/projects.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { secretRoutes } from './routes/secrets.js';
import { drainOnClose } from './shutdown.js';
import { limitConnectionsPerAddress, limitTotalConnections, serverTimeoutOptions } from './connections.js';
import { limitPipelining, refuseLargeBodiesEarly, responseBudget } from './backpressure.js';
import { sysRoutes, type SealControl } from './routes/sys.js';
import { VERSION } from '../../common/version.js';
import { tokenRoutes } from './routes/tokens.js';
import { authJwtRoutes } from './routes/auth-jwt.js';
import { metricsRoutes } from './routes/metrics.js';
import { cookieAuth, sessionRoutes } from './session.js';
import { uiRoutes } from './ui.js';
import { operationIds, swaggerOptions } from './openapi.js';
import type { Metrics } from '../services/metrics/metrics.js';

export interface AppOptions {
  logger: FastifyServerOptions['loggerInstance'];
  https?: { cert: Buffer; key: Buffer } | null;
  /** The seal of a server (vault/runtime.ts); absent, the vault is always open. */
  seal?: SealControl | null;
  /** GET /v1/sys/metrics and the per-request observation; `public`: --metrics-public. */
  metrics?: { metrics: Metrics; public: boolean } | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served while the vault is sealed (health, unseal, seal). */
    whileSealed?: boolean;
    /** Waits for an unseal that is opening the vault before going on (seal). */
    awaitOpen?: boolean;
    /** An unseal submission: a seal arriving while one is in flight (even before its body is read) waits for it. */
    unsealSubmission?: boolean;
    /** The JSON body has secret names as object keys: parsed into null-prototype objects, `__proto__` a name like any other (http/json.ts). */
    namesAsKeys?: boolean;
  }
  interface FastifyRequest {
    /** The seal epoch when the request arrived: a response to a request that a seal overtook carries no value. */
    sealEpoch: number;
  }
}

/**
 * While sealed, every route but the `whileSealed` ones answers 503 sealed,
 * before authentication (the token hash key is sealed too). A seal while a
 * request runs moves the epoch: a read's answer (GET, HEAD, or a streamed
 * body such as a backup) is replaced by 503 sealed, so no value leaves after
 * the seal call has returned. Writes that committed answer as they are.
 */
function sealGuard(app: FastifyInstance, seal: SealControl): void {
  app.decorateRequest('sealEpoch', 0);
  // Streaming answers under way (a backup): cut at the moment of a seal, so nothing more leaves.
  const streams = new Set<{ destroy(e?: Error): void }>();
  seal.onSeal(() => {
    for (const st of streams) st.destroy(new Error('the vault was sealed'));
    streams.clear();
  });
  // Unseal submissions from the moment they arrive (before their body is read) until they are answered.
  const submissions = new Map<FastifyRequest, () => void>();
  const finish = (req: FastifyRequest) => {
    submissions.get(req)?.();
    submissions.delete(req);
  };
  // Callback-style hooks: they run on every request, and an async hook costs a promise each time.
  app.addHook('onRequest', (req, _reply, done) => {
    // The client reset the connection after sending its request: no address, nobody to answer (request_aborted, at debug level).
    if (req.ip === undefined) return done(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    const go = () => {
      req.sealEpoch = seal.epoch;
      if (seal.sealed && !req.routeOptions.config?.whileSealed)
        done(new SealedError('the vault is sealed: unseal it with `hush operator unseal` (docs/keys.md)'));
      else done();
    };
    const cfg = req.routeOptions.config;
    if (cfg?.unsealSubmission) {
      let resolve!: () => void;
      const p = new Promise<void>((r) => {
        resolve = r;
      });
      submissions.set(req, resolve);
      (req as FastifyRequest & { submission?: Promise<void> }).submission = p;
    }
    if (cfg?.awaitOpen) {
      const pending = [...submissions.keys()]
        .map((r) => (r as FastifyRequest & { submission?: Promise<void> }).submission)
        .filter((p) => p !== undefined);
      Promise.all(pending)
        .then(() => seal.settled())
        .then(go, go);
    } else go();
  });
  app.addHook('onResponse', (req, _reply, done) => {
    if (submissions.has(req)) finish(req);
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    if (submissions.has(req)) finish(req);
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    const stream = payload !== null && typeof payload === 'object' && typeof (payload as { pipe?: unknown }).pipe === 'function';
    if (stream && seal.epoch === req.sealEpoch && !req.routeOptions.config?.whileSealed) {
      const st = payload as { destroy(e?: Error): void; once(ev: string, fn: () => void): void };
      streams.add(st);
      st.once('close', () => streams.delete(st));
    }
    if (seal.epoch === req.sealEpoch || req.routeOptions.config?.whileSealed || reply.statusCode >= 400) {
      done(null, payload);
      return;
    }
    if (!stream && req.method !== 'GET' && req.method !== 'HEAD') {
      done(null, payload);
      return;
    }
    if (stream) (payload as { destroy(): void }).destroy();
    reply.code(503).header('content-type', 'application/json; charset=utf-8').removeHeader('content-disposition').removeHeader('etag');
    done(null, JSON.stringify({ error: { code: 'sealed', message: 'the vault was sealed while this request ran', requestId: req.id } }));
  });
}

// Request ids: 64 random bits each, drawn from a pooled buffer (one
// randomBytes call per 512 ids; a call per request cost more than routing it).
let idPool = Buffer.alloc(0);
let idOffset = 0;
const newRequestId = () => {
  if (idOffset + 8 > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  const id = `req_${idPool.toString('hex', idOffset, idOffset + 8)}`;
  idOffset += 8;
  return id;
};

type RateLimitCallback = (err: Error | null, res?: { current: number; ttl: number }) => void;

/**
 * @fastify/rate-limit's custom-store interface over the shared limit
 * (PostgreSQL, services/limits/rate-limit.ts). The plugin constructs the
 * store itself, with its options, which this one does not need.
 */
function sharedRateLimitStore(limit: SharedRateLimit) {
  return class SharedRateLimitStore {
    prefix = '';
    incr(key: string, cb: RateLimitCallback, timeWindow: number, max: number): void {
      limit.take(this.prefix + key, timeWindow, max).then(
        (r) => cb(null, r),
        (e: Error) => cb(e),
      );
    }
    /**
     * A route with its own limit counts apart, as the plugin's stores do. The
     * plugin passes its merged options with `routeInfo` (its type declaration
     * says RouteOptions).
     */
    child(options: unknown): SharedRateLimitStore {
      const info = (options as { routeInfo?: { method?: string; url?: string } }).routeInfo;
      const s = new SharedRateLimitStore();
      s.prefix = `${info?.method ?? ''}${info?.url ?? ''}-`;
      return s;
    }
  };
}

/** Malformed HTTP that never becomes a request (the parser rejects it): status, code, message. */
function clientErrorAnswer(code: string | undefined): [number, string, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'headers_too_large', 'the request line and headers exceed the 16 KiB limit'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout', 'the request was not received in time'];
  return [400, 'invalid_request', 'the request is not valid HTTP/1.1'];
}

/**
 * Answers a request Node's HTTP parser refused with the standard error
 * shape. The error is not logged as an object: it carries the raw bytes of
 * the request (`rawPacket`), Authorization header included.
 */
function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A client that hung up (mid-body: the parser sees the stream end early) is not a malformed request.
  if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || socket.destroyed) {
    socket.destroy();
    return;
  }
  const [status, code, message] = clientErrorAnswer(err.code);
  const requestId = newRequestId();
  const body = JSON.stringify({ error: { code, message, requestId } });
  this.log.info({ reqId: requestId, clientError: err.code ?? 'unknown', status }, 'malformed HTTP request refused');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n` +
        'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy();
}

/** Headers every response carries, errors included (docs/security-model.md). */
function standardHeaders(reply: FastifyReply, requestId: string, https: boolean): void {
  reply.header('x-request-id', requestId);
  reply.header('cache-control', 'no-store');
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  if (https) reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
}

/** Builds the Fastify app around a container. Does not listen. */
export async function buildApp(c: Container, opts: AppOptions): Promise<FastifyInstance> {
  const cfg = c.config;
  // Slow clients: the whole request (headers and body) within --request-timeout, idle keep-alive connections
  // closed after --keep-alive-timeout, at most --max-connections open, and --max-connections-per-address from one address.
  const m = opts.metrics?.metrics;
  const refused = m ? (reason: Parameters<typeof m.connectionRefused>[0]) => m.connectionRefused(reason) : undefined;
  const limits = {
    requestTimeoutMs: cfg.requestTimeoutMs,
    keepAliveTimeoutMs: cfg.keepAliveTimeoutMs,
    maxConnectionsPerAddress: cfg.maxConnectionsPerAddress,
    maxConnections: cfg.maxConnections,
    trustProxy: cfg.trustProxy,
    refused,
  };
  const timeouts = serverTimeoutOptions(limits);
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: cfg.bodyLimitBytes,
    trustProxy: cfg.trustProxy.length ? cfg.trustProxy : false,
    https: opts.https ? { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2', ...timeouts } : null,
    http: timeouts,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: cfg.keepAliveTimeoutMs,
    // The server's own id, always: a client's X-Request-Id is recorded beside it (clientRequestId), never in its place.
    genReqId: () => newRequestId(),
    // Log lines of a request carry the client's own id too, when it sent one, to find them by it.
    childLoggerFactory: (
      logger: { child: (b: object, o?: object) => unknown },
      bindings: object,
      childOpts: object,
      raw: { headers: Record<string, string | string[] | undefined> },
    ) => {
      const cid = clientRequestId(raw);
      return logger.child(cid ? { ...bindings, clientRequestId: cid } : bindings, childOpts);
    },
    routerOptions: { maxParamLength: 300 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    clientErrorHandler,
    // Bad percent-encoding and over-long path segments are answered before
    // routing; without this Fastify answers them in its own shape, echoing the path.
    frameworkErrors: (err: Error, req: Parameters<typeof errorHandler>[1], reply: Parameters<typeof errorHandler>[2]) => {
      // These replies skip the onSend hook, so the standard headers are set here.
      standardHeaders(reply, req.id, !!opts.https);
      void errorHandler(err as never, req, reply);
    },
  } as FastifyServerOptions) as unknown as FastifyInstance;
  app.server.headersTimeout = timeouts.headersTimeout;
  limitTotalConnections(app.server, limits, app.log);
  limitConnectionsPerAddress(app.server, limits, app.log);
  // Pipelined requests one at a time per connection, and a budget for answers that clients do not read (backpressure.ts).
  refuseLargeBodiesEarly(app.server, cfg.bodyLimitBytes, newRequestId);
  const backpressure = limitPipelining(app.server, {
    stallMs: cfg.requestTimeoutMs,
    requestId: newRequestId,
    log: app.log,
    refused: refused && (() => refused('pipelined')),
  });
  // Vault's LIST method, which Node's parser refuses, for the KV v2 routes (list-method.ts).
  if (cfg.kvMount) acceptListMethod(app.server, cfg.kvMount);

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, utf8JsonParser(app));

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({
      error: {
        code: 'route_not_found',
        message: `no route ${req.method} ${redactTokens(req.url.split('?')[0]).slice(0, 200)}`,
        requestId: req.id,
      },
    });
  });

  operationIds(app);
  await app.register(swagger, swaggerOptions(VERSION));

  await app.register(rateLimit, {
    global: true,
    ...(c.limits.rate ? { store: sharedRateLimitStore(c.limits.rate) } : {}),
    max: cfg.rateLimitMax,
    timeWindow: cfg.rateLimitWindowMs,
    errorResponseBuilder: (req, ctx) => ({
      statusCode: 429,
      error: {
        code: 'rate_limited',
        message: `rate limit of ${ctx.max} requests per ${Math.round(ctx.ttl / 1000) || 1}s exceeded; retry after ${ctx.after}`,
        requestId: req.id,
      },
    }),
  });

  app.addHook('onSend', async (req, reply, payload) => {
    standardHeaders(reply, req.id, !!opts.https);
    return payload;
  });
  drainOnClose(app);
  responseBudget(app, backpressure, cfg.responseBufferBytes);
  // A client that hung up while the hooks before the body ran: its body would never arrive (nor an error
  // saying so), so the request ends here, classified as what it is (errors.ts, isClientAbort).
  app.addHook('preParsing', (req, _reply, payload, done) => {
    if (req.raw.destroyed && !req.raw.complete) done(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    else done(null, payload);
  });

  // A NUL has no place in any name or filter, and PostgreSQL cannot store one:
  // refused before authentication, so no audit event ever carries one (one
  // event that fails to insert would fail every request of its commit batch).
  app.addHook('onRequest', (req, _reply, done) => {
    done(req.url.includes('%00') ? new HushError('invalid_request', 400, 'the URL contains a NUL character (%00)') : undefined);
  });

  // Getters: a sealable container's services are the ones of the vault as it is when the request runs.
  if (opts.seal) sealGuard(app, opts.seal);
  registerAuth(app, {
    get tokens() {
      return c.tokens;
    },
    get audit() {
      return c.audit;
    },
    authFailLimit: cfg.authFailLimit,
    session: cookieAuth(app, c, cfg.ui),
  });
  // The web UI and its sessions (docs/ui.md); --no-ui: neither.
  if (cfg.ui) {
    uiRoutes(app);
    sessionRoutes(app, c);
  }

  if (opts.metrics) metricsRoutes(app, opts.metrics.metrics, opts.metrics.public);
  sysRoutes(app, c, opts.seal ?? null);
  projectRoutes(app, c);
  secretRoutes(app, c);
  historyRoutes(app, c);
  if (cfg.kvMount) kvRoutes(app, c, cfg.kvMount);
  lifecycleRoutes(app, c);
  tokenRoutes(app, c);
  authJwtRoutes(app, c);
  auditRoutes(app, c);
  webhookRoutes(app, c);

  app.get('/v1/openapi.json', { config: { auth: 'none' }, schema: { hide: true } }, () => Promise.resolve(app.swagger()));
  return app;
}
