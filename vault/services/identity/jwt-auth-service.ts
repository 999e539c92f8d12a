import type { FastifyBaseLogger } from 'fastify';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { formatDuration, parseDuration } from '../../duration.js';
import { AlreadyExistsError, ForbiddenError, HushError, InvalidRequestError, UnauthorizedError } from '../../errors.js';
import type { JwtRoleRow, JwtRoleStore } from '../../store/jwt-role-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import { RESOURCE_NAME_RE } from '../secret/names.js';
import { formatGrant, grantsCover, parseGrant } from '../token/grants.js';
import type { Principal, TokenService } from '../token/token-service.js';
import { checkJwks, checkPublicKey, IssuerKeysError, JWT_ALGORITHMS, type IssuerKeys } from './issuer-keys.js';

/**
 * Machine identity (docs/machine-identity.md): a workload exchanges a JWT
 * its issuer signed (a GitHub Actions or GitLab CI ID token, a Kubernetes
 * service-account token) for a short-lived Hush token, through a role that
 * says which issuer, audience and claims are accepted and which scopes the
 * token gets. Roles are managed by root, or by a holder of admin on every
 * project the role's scopes name.
 */

/** Seconds of clock skew allowed on exp, nbf and iat. */
export const CLOCK_SKEW_S = 60;
/** A role's tokens live at least this long (and at most --token-max-ttl). */
const MIN_ROLE_TTL_MS = 60_000;
const MAX_JWT_CHARS = 16 * 1024;
const MAX_CLAIMS = 32;

export interface RoleInput {
  name: string;
  issuer: string;
  audience: string;
  scopes: string[];
  ttl: string;
  boundClaims?: Record<string, string | string[]>;
  boundSubject?: string;
  requiredClaims?: string[];
  jwksUrl?: string;
  jwks?: unknown;
  publicKey?: string;
}

/** The same answer for every failed login, whatever the reason (which goes to the audit event). */
export class JwtLoginFailed extends UnauthorizedError {
  constructor(readonly reason: string, readonly claims: Record<string, unknown> = {}) {
    super('JWT login failed: the role does not exist, or the JWT is not valid for it');
  }
}

/** Glob match: `*` matches any run of characters (including none); everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(value);
}

export function publicRole(r: JwtRoleRow) {
  return {
    name: r.name, issuer: r.issuer, audience: r.audience, scopes: r.scopes, ttl: formatDuration(r.ttlMs), ttlSeconds: Math.round(r.ttlMs / 1000),
    boundClaims: r.boundClaims, boundSubject: r.boundSubject, requiredClaims: r.requiredClaims,
    keySource: r.publicKey !== null ? 'public_key' : r.jwks !== null ? 'jwks' : r.jwksUrl !== null ? 'jwks_url' : 'discovery',
    jwksUrl: r.jwksUrl, createdAt: new Date(r.createdAt).toISOString(), createdBy: r.createdBy,
  };
}

function httpUrl(v: string, field: string): string {
  let u: URL;
  try { u = new URL(v); } catch { throw new InvalidRequestError(`${field} must be an http(s) URL`); }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InvalidRequestError(`${field} must be an http(s) URL`);
  if (u.username || u.password) throw new InvalidRequestError(`${field} must not carry credentials`);
  return v;
}

const claimText = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);

export function jwtAuthServiceFactory(deps: { roles: JwtRoleStore; tokens: TokenService; audit: AuditService; keys: IssuerKeys; log: FastifyBaseLogger; maxTtlMs: number }) {
  const { roles, tokens, audit, keys, log, maxTtlMs } = deps;

  const isRoot = (p: Principal) => p.grants.some((g) => g.kind === 'root');

  /** Root, or admin of every project the scopes name (a system scope needs root). */
  function mayManage(p: Principal, scopes: string[]): boolean {
    if (isRoot(p)) return true;
    return scopes.every((s) => {
      const g = parseGrant(s);
      if (g.kind === 'audit' || g.kind === 'backup' || g.kind === 'root') return false;
      return grantsCover(p.grants, { kind: 'admin', project: g.project, env: '*' });
    });
  }

  async function validate(p: Principal, input: RoleInput): Promise<JwtRoleRow> {
    if (!RESOURCE_NAME_RE.test(input.name)) throw new InvalidRequestError('a role name is lower-case letters, digits, ".", "_" and "-", up to 63 characters, starting with a letter or digit');
    httpUrl(input.issuer, 'issuer');
    if (!input.audience) throw new InvalidRequestError('audience is required: a JWT is accepted only when its aud names it');
    const scopes = input.scopes.map((s) => formatGrant(parseGrant(s)));
    if (scopes.length === 0) throw new InvalidRequestError('a role needs at least one scope');
    if (!mayManage(p, scopes)) throw new ForbiddenError('managing a role needs root, or admin on every project its scopes name (a system scope needs root)');
    const ttlMs = parseDuration(input.ttl);
    if (ttlMs === null) throw new InvalidRequestError('invalid ttl: use a duration such as 15m or 1h');
    if (ttlMs < MIN_ROLE_TTL_MS) throw new InvalidRequestError('ttl must be at least 1m');
    if (ttlMs > maxTtlMs) throw new InvalidRequestError(`ttl ${input.ttl} exceeds the maximum of ${formatDuration(maxTtlMs)}`);
    const sources = [input.jwksUrl, input.jwks, input.publicKey].filter((x) => x !== undefined).length;
    if (sources > 1) throw new InvalidRequestError('give at most one of jwksUrl, jwks and publicKey (none: OIDC discovery from the issuer)');
    let jwks: string | null = null;
    let publicKey: string | null = null;
    try {
      if (input.jwks !== undefined) jwks = JSON.stringify(await checkJwks(input.jwks, 'jwks'));
      if (input.publicKey !== undefined) { await checkPublicKey(input.publicKey); publicKey = input.publicKey; }
    } catch (e) {
      if (e instanceof IssuerKeysError) throw new InvalidRequestError(e.message);
      throw e;
    }
    const boundClaims: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(input.boundClaims ?? {})) {
      const list = Array.isArray(v) ? v : [v];
      if (list.length === 0 || !list.every((x) => typeof x === 'string' && x.length > 0)) throw new InvalidRequestError(`bound claim ${k.slice(0, 40)} needs one or more non-empty strings`);
      boundClaims[k] = list;
    }
    if (Object.keys(boundClaims).length > MAX_CLAIMS || (input.requiredClaims ?? []).length > MAX_CLAIMS) throw new InvalidRequestError(`at most ${MAX_CLAIMS} bound and ${MAX_CLAIMS} required claims`);
    return {
      name: input.name, issuer: input.issuer, audience: input.audience, scopes, ttlMs, boundClaims, boundSubject: input.boundSubject ?? null,
      requiredClaims: [...new Set(input.requiredClaims ?? [])], jwksUrl: input.jwksUrl === undefined ? null : httpUrl(input.jwksUrl, 'jwksUrl'),
      jwks, publicKey, createdAt: Date.now(), createdBy: p.tokenId,
    };
  }

  /** Bound claims, sub pattern and required claims; the reason names the claim, never its value. */
  function matchClaims(role: JwtRoleRow, payload: JWTPayload): string | null {
    for (const c of role.requiredClaims) if (payload[c] === undefined) return `required claim ${c} is missing`;
    if (role.boundSubject !== null && (typeof payload.sub !== 'string' || !globMatch(role.boundSubject, payload.sub))) return 'sub does not match the role\'s subject pattern';
    for (const [claim, patterns] of Object.entries(role.boundClaims)) {
      const v = payload[claim];
      const values = (Array.isArray(v) ? v : [v]).map(claimText).filter((x): x is string => x !== null);
      if (!values.some((x) => patterns.some((p) => globMatch(p, x)))) return `claim ${claim} does not match the role`;
    }
    return null;
  }

  /** The claims a token and its audit event carry: iss, sub and the role's bound claims (values cut to 200 characters). */
  function claimsOf(role: JwtRoleRow | null, payload: JWTPayload): Record<string, unknown> {
    const out: Record<string, unknown> = { iss: claimText(payload.iss)?.slice(0, 200) ?? null, sub: claimText(payload.sub)?.slice(0, 200) ?? null };
    for (const c of Object.keys(role?.boundClaims ?? {})) {
      const v = payload[c];
      out[c] = Array.isArray(v) ? v.slice(0, 10).map((x) => claimText(x)?.slice(0, 200) ?? null) : claimText(v)?.slice(0, 200) ?? null;
    }
    return out;
  }

  async function verify(role: JwtRoleRow, jwt: string): Promise<JWTPayload> {
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(jwt).alg;
    } catch {
      throw new JwtLoginFailed('the JWT is malformed');
    }
    if (!(JWT_ALGORITHMS as readonly unknown[]).includes(alg)) throw new JwtLoginFailed(`algorithm ${String(alg).slice(0, 20)} is not allowed (RS256, ES256, EdDSA only)`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, keys.keyFor(role), {
        issuer: role.issuer, audience: role.audience, algorithms: [...JWT_ALGORITHMS], clockTolerance: CLOCK_SKEW_S, requiredClaims: ['exp', 'aud', 'iss'],
      }));
    } catch (e) {
      throw new JwtLoginFailed(reasonOf(e));
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat === 'number' && payload.iat > now + CLOCK_SKEW_S) throw new JwtLoginFailed('iat is in the future', payload as Record<string, unknown>);
    const bad = matchClaims(role, payload);
    if (bad) throw new JwtLoginFailed(bad, payload as Record<string, unknown>);
    return payload;
  }

  function reasonOf(e: unknown): string {
    if (e instanceof IssuerKeysError) return `issuer keys unavailable: ${e.message}`;
    if (e instanceof errors.JWTExpired) return 'the JWT has expired';
    if (e instanceof errors.JWTClaimValidationFailed) return `claim check failed: ${e.claim} ${e.reason}`.slice(0, 200);
    if (e instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify with the issuer\'s keys';
    if (e instanceof errors.JWKSNoMatchingKey) return 'no issuer key matches the JWT\'s kid';
    if (e instanceof errors.JOSEAlgNotAllowed) return 'the algorithm is not allowed';
    if (e instanceof errors.JWTInvalid || e instanceof errors.JWSInvalid) return 'the JWT is malformed';
    if (e instanceof errors.JOSEError) return `the JWT was refused (${e.code})`;
    return `the JWT could not be verified (${(e as Error).message?.slice(0, 120)})`;
  }

  return {
    async createRole(p: Principal, input: RoleInput, ctx: AuditContext) {
      const row = await validate(p, input);
      await audit.run(ctx, async (tx, record) => {
        if (!(await roles.insert(row, tx))) throw new AlreadyExistsError(`role ${row.name} already exists`);
        await record({ action: 'auth.role.create', outcome: 'ok', target: { role: row.name }, detail: { issuer: row.issuer, audience: row.audience, scopes: row.scopes, ttl: formatDuration(row.ttlMs), keySource: publicRole(row).keySource } });
      });
      return publicRole(row);
    },

    async listRoles(p: Principal) {
      return (await roles.list()).filter((r) => mayManage(p, r.scopes)).map(publicRole);
    },

    async getRole(p: Principal, name: string) {
      const r = await roles.get(name);
      if (!r || !mayManage(p, r.scopes)) throw new HushError('role_not_found', 404, `role ${name.slice(0, 63)} not found`);
      return publicRole(r);
    },

    async deleteRole(p: Principal, name: string, ctx: AuditContext) {
      const r = await roles.get(name);
      if (!r || !mayManage(p, r.scopes)) throw new HushError('role_not_found', 404, `role ${name.slice(0, 63)} not found`);
      await audit.run(ctx, async (tx, record) => {
        await roles.delete(name, tx);
        await record({ action: 'auth.role.delete', outcome: 'ok', target: { role: name } });
      });
      keys.forget(r);
      return { name, deleted: true };
    },

    /**
     * Exchanges a JWT for a token with the role's scopes, living at most the
     * role's ttl and at most until the JWT's exp. Every failure answers the
     * same 401, counts toward the failed-authentication limit, and writes
     * an `auth.jwt.login` event with the precise reason.
     */
    async login(roleName: string, jwt: string, ctx: AuditContext) {
      const ip = ctx.ip;
      const now = Date.now();
      await tokens.assertNotLockedOut(ip, now);
      const role = RESOURCE_NAME_RE.test(roleName) ? await roles.get(roleName) : null;
      try {
        if (!role) throw new JwtLoginFailed('the role does not exist');
        if (jwt.length > MAX_JWT_CHARS) throw new JwtLoginFailed(`the JWT is longer than ${MAX_JWT_CHARS} characters`);
        const payload = await verify(role, jwt);
        const expiresAt = Math.min(now + role.ttlMs, (payload.exp as number) * 1000);
        if (expiresAt <= now) throw new JwtLoginFailed('the JWT expires now', payload as Record<string, unknown>);
        const claims = claimsOf(role, payload);
        const issued = await tokens.issue({
          name: `jwt:${role.name}`, description: `JWT login via role ${role.name}: ${Object.entries(claims).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`.slice(0, 1000),
          scopes: role.scopes, expiresAt,
        }, ctx, (tokenId) => ({ action: 'auth.jwt.login', outcome: 'ok', target: { role: role.name, tokenId }, detail: { claims, scopes: role.scopes, expiresAt: new Date(expiresAt).toISOString() } }));
        return { token: issued.token, id: issued.id, expiresAt: new Date(issued.expiresAt).toISOString(), scopes: issued.scopes, role: role.name };
      } catch (e) {
        if (!(e instanceof JwtLoginFailed)) throw e;
        if (ip !== null) await tokens.recordFailure(ip, now);
        const detail = { reason: e.reason, claims: claimsOf(role, e.claims as JWTPayload) };
        log.info({ role: roleName.slice(0, 63), reason: e.reason }, 'JWT login refused');
        await audit.record(ctx, { action: 'auth.jwt.login', outcome: 'denied', target: { role: roleName.slice(0, 63) }, detail })
          .catch((err: Error) => log.error({ err: { message: err.message } }, 'could not record the refused JWT login'));
        throw e;
      }
    },
  };
}
export type JwtAuthService = ReturnType<typeof jwtAuthServiceFactory>;
