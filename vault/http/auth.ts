import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors.js';
import type { AuditContext, AuditService } from '../services/audit/audit-service.js';
import { allows, needLabel, type Need } from '../services/token/grants.js';
import { AuthFailure, AuthLockedOut, type Principal, type TokenService } from '../services/token/token-service.js';
import { authFailAggregator } from '../services/audit/auth-fail-aggregator.js';
import { toErrorBody } from './errors.js';
import { containsToken } from 'hush-vault-sdk/token-format';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The X-Request-Id a client sent, when it is a plain id: recorded in audit
 * events as detail.clientRequestId, beside the server's own request id,
 * never in its place (a client must not be able to pick, or replay, the id
 * an event is filed under). Never one that could be a token.
 */
export function clientRequestId(req: { headers: Record<string, string | string[] | undefined> }): string | null {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && CLIENT_REQUEST_ID.test(h) && !containsToken(h) ? h : null;
}

/**
 * What a route requires. 'none': public. 'any': any valid token (the
 * service filters what it returns). A function: the grant the request needs,
 * computed from validated params.
 */
export type AuthSpec = 'none' | 'any' | ((req: FastifyRequest) => Need | Need[]);

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    auditCtx: AuditContext;
  }
  interface FastifyContextConfig {
    auth?: AuthSpec;
    /** Audit action recorded when the request is denied. */
    action?: string;
    /** With auth 'any': a request with no credential at all (no token header, no session cookie) goes on with no principal, not counted as a failure. */
    anonymous?: boolean;
    /**
     * Started together with the token lookup (not after it), for the
     * handler to use once the request is authorised: on PostgreSQL a
     * read's environment lookup then costs no round trip of its own.
     * Its result is never shown to a caller that fails authentication.
     */
    prefetch?: (req: FastifyRequest) => Promise<unknown> | null;
    /**
     * What a failed request's audit event records beyond its route and
     * method: the token a revoke named, the scopes a create asked for.
     * Computed from the validated request; never a secret value.
     */
    auditFailure?: (req: FastifyRequest) => { target?: Record<string, unknown>; detail?: Record<string, unknown> };
  }
  interface FastifyRequest {
    /** What the route's `prefetch` started, or null. */
    prefetched: Promise<unknown> | null;
  }
}

export function registerAuth(
  app: FastifyInstance,
  deps: {
    tokens: TokenService;
    audit: Pick<AuditService, 'record' | 'announce'>;
    authFailLimit: number;
    /** The web UI's sessions (http/session.ts): the cookie, for a request with no token header; a session's token sent as a bearer token is refused. */
    session?: {
      fromCookie(req: FastifyRequest, reply: FastifyReply): (() => Promise<Principal>) | null;
      checkBearer(p: Principal): Promise<void>;
    };
  },
) {
  // auth.fail events: one per address per minute, carrying counts (docs/audit.md).
  const authFails = authFailAggregator({
    record: (ctx, input) => deps.audit.record(ctx, input),
    onError: (e) => app.log.error({ err: { message: (e as Error).message } }, 'could not record auth.fail audit event'),
  });
  app.addHook('onClose', async () => authFails.close());
  // root.used (webhooks, docs/webhooks.md): every request made with a root token, audited or not, once answered.
  app.addHook('onResponse', (req, reply, done) => {
    const p = req.principal;
    if (p && p.grants.some((g) => g.kind === 'root')) {
      try {
        void deps.audit.announce(req.auditCtx, 'root.used', {
          method: req.method,
          route: req.routeOptions.url ?? null,
          status: reply.statusCode,
          ip: req.ip,
        });
      } catch {
        /* sealed meanwhile: no key to sign with, nothing to announce */
      }
    }
    done();
  });
  /** Requests whose denial the preHandler already recorded. */
  const deniedRecorded = new WeakSet<FastifyRequest>();
  const attempt = (req: FastifyRequest) => ({ ip: req.ip, requestId: req.id, route: req.routeOptions.url ?? null, method: req.method });
  app.decorateRequest('principal', null);
  app.decorateRequest('prefetched', null);
  app.decorateRequest('auditCtx', null as unknown as AuditContext);

  app.addHook('onRequest', async (req, reply) => {
    const spec = req.routeOptions.config?.auth ?? 'none';
    req.auditCtx = { actorId: 'anonymous', actorName: 'anonymous', ip: req.ip, requestId: req.id, clientRequestId: clientRequestId(req) };
    if (spec === 'none') return;
    const now = Date.now();
    // Vault's clients send the token as X-Vault-Token (docs/vault-compat.md); Authorization wins when both are present.
    const vaultToken = req.headers['x-vault-token'];
    const header = req.headers.authorization ?? (typeof vaultToken === 'string' ? `Bearer ${vaultToken}` : vaultToken);
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const prefetch = m ? req.routeOptions.config?.prefetch : undefined;
    if (prefetch) {
      const p = prefetch(req);
      // Awaited (or dropped) by the handler; a failure here surfaces there, if the request gets that far.
      p?.catch(() => undefined);
      req.prefetched = p;
    }
    const session = header === undefined ? deps.session?.fromCookie(req, reply) : null;
    if (header === undefined && !session && req.routeOptions.config?.anonymous) return;
    try {
      req.principal = session ? await session() : await deps.tokens.authenticate(m ? m[1] : header ? 'malformed' : undefined, req.ip, now);
      if (!session) await deps.session?.checkBearer(req.principal);
    } catch (e) {
      if (e instanceof AuthLockedOut) {
        authFails.lockedOut(attempt(req));
        reply.header('retry-after', String(e.retryAfterS));
      } else if (e instanceof AuthFailure) {
        const failures = await deps.tokens.recordFailure(req.ip, now, req.id);
        const blocked = failures === deps.authFailLimit;
        req.log.info({ authFail: e.reason, failures, blocked }, 'authentication failed');
        await authFails.fail(attempt(req), e.reason);
        reply.header('www-authenticate', 'Bearer realm="hush"');
      }
      throw e;
    }
    req.auditCtx = {
      actorId: req.principal.tokenId,
      actorName: req.principal.name,
      ip: req.ip,
      requestId: req.id,
      clientRequestId: req.auditCtx.clientRequestId,
      grants: req.principal.grants,
    };
  });

  app.addHook('preHandler', async (req) => {
    const spec = req.routeOptions.config?.auth ?? 'none';
    if (typeof spec !== 'function' || !req.principal) return;
    const needs = ([] as Need[]).concat(spec(req));
    const missing = needs.find((n) => !allows(req.principal!.grants, n));
    if (!missing) return;
    const label = needLabel(missing);
    const action = req.routeOptions.config?.action ?? 'request';
    try {
      await deps.audit.record(req.auditCtx, {
        action,
        outcome: 'denied',
        project: 'project' in missing ? missing.project : null,
        env: 'env' in missing ? missing.env : null,
        target: { route: req.routeOptions.url ?? null, method: req.method },
        detail: { missing: label },
      });
    } catch (e) {
      req.log.error({ err: { message: (e as Error).message } }, 'could not record denied audit event');
    }
    deniedRecorded.add(req);
    throw new ForbiddenError(`this token lacks the grant ${label}`);
  });

  // A failed request on an audited route leaves an event too: outcome
  // 'denied' for a 403 the service raised, 'error' otherwise. The request's
  // own transaction rolled back, so this is a separate one. Not for 401 and
  // 429 (auth.fail covers them), nor when the audit log or database is what
  // failed. Successful reads of the audit log itself are not recorded, so
  // errors on those routes are not either.
  app.addHook('onError', async (req, _reply, err) => {
    const action = req.routeOptions.config?.action;
    if (!action || action.startsWith('audit.') || !req.principal || deniedRecorded.has(req)) return;
    const { status, body } = toErrorBody(err, req.id, req);
    if (
      status === 401 ||
      status === 429 ||
      body.error.code === 'request_aborted' ||
      body.error.code === 'audit_unavailable' ||
      body.error.code === 'storage_unavailable' ||
      body.error.code === 'sealed'
    )
      return;
    const params = (req.params ?? {}) as Record<string, unknown>;
    const str = (v: unknown, max: number) => (typeof v === 'string' && v ? v.slice(0, max) : null);
    const key = str(params.key, 256);
    let extra: ReturnType<NonNullable<typeof req.routeOptions.config.auditFailure>> = {};
    try {
      extra = req.routeOptions.config?.auditFailure?.(req) ?? {};
    } catch {
      /* a body that failed its schema: the route and status still say what happened */
    }
    try {
      await deps.audit.record(req.auditCtx, {
        action,
        outcome: status === 403 ? 'denied' : 'error',
        project: str(params.p, 63),
        env: str(params.e, 63),
        target: { route: req.routeOptions.url ?? null, method: req.method, ...(key ? { key } : {}), ...extra.target },
        detail: { status, code: body.error.code, ...extra.detail },
      });
    } catch (e) {
      req.log.error({ err: { message: (e as Error).message } }, 'could not record failed-request audit event');
    }
  });
}
