import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, HushError } from '../errors.js';
import type { AuditContext, AuditService } from '../services/audit/audit-service.js';
import { allows, needLabel, type Need } from '../services/token/grants.js';
import { AuthFailure, type Principal, type TokenService } from '../services/token/token-service.js';

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
  }
}

class TooManyAuthFailures extends HushError {
  constructor(readonly retryAfterS: number) {
    super('rate_limited', 429, 'too many failed authentications from this address; retry after the time in Retry-After');
  }
}

/**
 * Per-IP failed-authentication limiter. Once an address has `limit` failures
 * inside `windowMs`, every authenticated request from it gets 429 until the
 * window ends, so a correct guess cannot be told from a wrong one.
 */
function failLimiter(limit: number, windowMs: number) {
  const seen = new Map<string, { start: number; count: number }>();
  return {
    blockedFor(ip: string, now: number): number {
      const s = seen.get(ip);
      if (!s || now - s.start >= windowMs) return 0;
      return s.count >= limit ? Math.ceil((s.start + windowMs - now) / 1000) : 0;
    },
    /** Counts a failure; returns the address's failures in the current window. */
    fail(ip: string, now: number): number {
      let s = seen.get(ip);
      if (!s || now - s.start >= windowMs) seen.set(ip, (s = { start: now, count: 1 }));
      else s.count++;
      if (seen.size > 100_000) for (const [k, v] of seen) if (now - v.start >= windowMs) seen.delete(k);
      return s.count;
    },
  };
}

/**
 * auth.fail events are rate-limited to one per IP per minute; the event
 * carries how many failures it stands for, so a flood cannot fill the disk.
 */
function authFailAuditor(audit: Pick<AuditService, 'record'>) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return async (req: FastifyRequest, reason: string) => {
    const now = Date.now();
    const ip = req.ip;
    const s = last.get(ip);
    if (s && now - s.at < 60_000) { s.suppressed++; return; }
    const count = (s?.suppressed ?? 0) + 1;
    last.set(ip, { at: now, suppressed: 0 });
    if (last.size > 100_000) for (const [k, v] of last) if (now - v.at >= 60_000) last.delete(k);
    try {
      await audit.record({ actorId: 'anonymous', actorName: 'anonymous', ip, requestId: req.id }, {
        action: 'auth.fail', outcome: 'denied', target: { route: req.routeOptions.url ?? null, method: req.method }, detail: { reason, count },
      });
    } catch (e) {
      req.log.error({ err: { message: (e as Error).message } }, 'could not record auth.fail audit event');
    }
  };
}

export function registerAuth(app: FastifyInstance, deps: { tokens: TokenService; audit: Pick<AuditService, 'record'>; authFailLimit: number; authFailWindowMs: number }) {
  const limiter = failLimiter(deps.authFailLimit, deps.authFailWindowMs);
  const auditFail = authFailAuditor(deps.audit);
  app.decorateRequest('principal', null);
  app.decorateRequest('auditCtx', null as unknown as AuditContext);

  app.addHook('onRequest', async (req, reply) => {
    const spec = req.routeOptions.config?.auth ?? 'none';
    req.auditCtx = { actorId: 'anonymous', actorName: 'anonymous', ip: req.ip, requestId: req.id };
    if (spec === 'none') return;
    const now = Date.now();
    const wait = limiter.blockedFor(req.ip, now);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new TooManyAuthFailures(wait);
    }
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    try {
      req.principal = await deps.tokens.authenticate(m ? m[1] : header ? 'malformed' : undefined, req.ip, now);
    } catch (e) {
      if (e instanceof AuthFailure) {
        const failures = limiter.fail(req.ip, now);
        const blocked = failures === deps.authFailLimit;
        req.log.info({ authFail: e.reason, failures, blocked }, 'authentication failed');
        await auditFail(req, e.reason);
        reply.header('www-authenticate', 'Bearer realm="hush"');
      }
      throw e;
    }
    req.auditCtx = { actorId: req.principal.tokenId, actorName: req.principal.name, ip: req.ip, requestId: req.id };
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
        action, outcome: 'denied', project: 'project' in missing ? missing.project : null, env: 'env' in missing ? missing.env : null,
        target: { route: req.routeOptions.url ?? null, method: req.method }, detail: { missing: label },
      });
    } catch (e) {
      req.log.error({ err: { message: (e as Error).message } }, 'could not record denied audit event');
    }
    throw new ForbiddenError(`this token lacks the grant ${label}`);
  });
}
