import type { FastifyBaseLogger } from 'fastify';
import { createHash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { JwtRoleCreateInput } from 'hush-vault-sdk';
import { formatDuration, parseDuration } from '../../../common/duration.js';
import { AlreadyExistsError, ForbiddenError, HushError, InvalidRequestError, UnauthorizedError } from '../../errors.js';
import type { JwtRoleRow, JwtRoleStore } from '../../store/jwt-role-store.js';
import type { AuditContext, AuditService } from '../audit/audit-service.js';
import { RESOURCE_NAME_RE } from '../secret/names.js';
import { formatGrant, grantsCover, isSystemKind, parseGrant } from '../token/grants.js';
import { IssueRefused, type Principal, type TokenService } from '../token/token-service.js';
import { redactTokens } from '../token/redact.js';
import { checkJwks, checkPublicKey, IssuerKeysError, JWT_ALGORITHMS, loadJose, type IssuerKeys } from './issuer-keys.js';

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

/** A role as a client sends it: the SDK's JwtRoleCreateInput (the wire contract), with the JWKS not yet checked. */
export type RoleInput = Omit<JwtRoleCreateInput, 'jwks'> & { jwks?: unknown };

/** The same answer for every failed login, whatever the reason (which goes to the audit event). */
export class JwtLoginFailed extends UnauthorizedError {
  constructor(
    readonly reason: string,
    readonly claims: Record<string, unknown> = {},
  ) {
    super('JWT login failed: the role does not exist, or the JWT is not valid for it');
  }
}

/** Longest claim value and most stars a pattern may have: matching stays cheap whatever a role or a JWT holds. */
export const MAX_CLAIM_CHARS = 4096;
export const MAX_PATTERN_STARS = 16;

/**
 * Glob match: `*` matches any run of characters (including none);
 * everything else is literal. Iterative, with one backtrack point (the last
 * star): O(pattern x value) at worst, never exponential, and no RegExp.
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = v;
    } else if (star !== -1) {
      p = star + 1;
      v = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export function publicRole(r: JwtRoleRow) {
  return {
    name: r.name,
    issuer: r.issuer,
    audience: r.audience,
    scopes: r.scopes,
    ttl: formatDuration(r.ttlMs),
    ttlSeconds: Math.round(r.ttlMs / 1000),
    boundClaims: r.boundClaims,
    boundSubject: r.boundSubject,
    requiredClaims: r.requiredClaims,
    keySource: r.publicKey !== null ? 'public_key' : r.jwks !== null ? 'jwks' : r.jwksUrl !== null ? 'jwks_url' : 'discovery',
    jwksUrl: r.jwksUrl,
    createdAt: new Date(r.createdAt).toISOString(),
    createdBy: r.createdBy,
  };
}

function httpUrl(v: string, field: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidRequestError(`${field} must be an http(s) URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InvalidRequestError(`${field} must be an http(s) URL`);
  if (u.username || u.password) throw new InvalidRequestError(`${field} must not carry credentials`);
  return v;
}

/** A claim the JWT itself holds (never one inherited from Object.prototype, such as constructor). */
const own = (payload: JWTPayload, name: string): unknown => (Object.hasOwn(payload, name) ? payload[name] : undefined);

const claimText = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

export function jwtAuthServiceFactory(deps: {
  roles: JwtRoleStore;
  tokens: TokenService;
  audit: AuditService;
  keys: IssuerKeys;
  log: FastifyBaseLogger;
  maxTtlMs: number;
}) {
  const { roles, tokens, audit, keys, log, maxTtlMs } = deps;

  const isRoot = (p: Principal) => p.grants.some((g) => g.kind === 'root');

  /** Root, or admin of every project the scopes name (a system scope needs root). */
  function mayManage(p: Principal, scopes: string[]): boolean {
    if (isRoot(p)) return true;
    return scopes.every((s) => {
      const g = parseGrant(s);
      if (isSystemKind(g.kind)) return false;
      return grantsCover(p.grants, { kind: 'admin', project: g.project, env: '*' });
    });
  }

  async function validate(p: Principal, input: RoleInput): Promise<JwtRoleRow> {
    if (!RESOURCE_NAME_RE.test(input.name))
      throw new InvalidRequestError(
        'a role name is lower-case letters, digits, ".", "_" and "-", up to 63 characters, starting with a letter or digit',
      );
    httpUrl(input.issuer, 'issuer');
    if (!input.audience || !input.audience.trim())
      throw new InvalidRequestError('audience is required: a JWT is accepted only when its aud names it');
    for (const pat of [input.boundSubject ?? '', ...Object.values(input.boundClaims ?? {}).flat()]) {
      if (typeof pat === 'string' && pat.split('*').length - 1 > MAX_PATTERN_STARS)
        throw new InvalidRequestError(`a claim pattern may have at most ${MAX_PATTERN_STARS} "*"`);
    }
    const scopes = input.scopes.map((s) => formatGrant(parseGrant(s)));
    if (scopes.length === 0) throw new InvalidRequestError('a role needs at least one scope');
    if (!mayManage(p, scopes))
      throw new ForbiddenError('managing a role needs root, or admin on every project its scopes name (a system scope needs root)');
    const ttlMs = parseDuration(input.ttl);
    if (ttlMs === null) throw new InvalidRequestError('invalid ttl: use a duration such as 15m or 1h');
    if (ttlMs < MIN_ROLE_TTL_MS) throw new InvalidRequestError('ttl must be at least 1m');
    if (ttlMs > maxTtlMs) throw new InvalidRequestError(`ttl ${input.ttl} exceeds the maximum of ${formatDuration(maxTtlMs)}`);
    const sources = [input.jwksUrl, input.jwks, input.publicKey].filter((x) => x !== undefined).length;
    if (sources > 1)
      throw new InvalidRequestError('give at most one of jwksUrl, jwks and publicKey (none: OIDC discovery from the issuer)');
    let jwks: string | null = null;
    let publicKey: string | null = null;
    try {
      if (input.jwks !== undefined) {
        const priv = ((input.jwks as { keys?: Record<string, unknown>[] }).keys ?? []).some((k) =>
          ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'].some((m) => Object.hasOwn(k, m)),
        );
        if (priv)
          throw new InvalidRequestError(
            "the JWKS holds private or secret key material (d, p, q, dp, dq, qi, k): give the issuer's public keys only",
          );
        // Stored as the public members of each key only: nothing else the document carried is kept.
        const PUBLIC = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use', 'key_ops', 'x5c', 'x5t', 'x5t#S256'];
        const keysOnly = {
          keys: (input.jwks as { keys: Record<string, unknown>[] }).keys.map((k) =>
            Object.fromEntries(Object.entries(k).filter(([m]) => PUBLIC.includes(m))),
          ),
        };
        jwks = JSON.stringify(await checkJwks(keysOnly, 'jwks'));
      }
      if (input.publicKey !== undefined) {
        await checkPublicKey(input.publicKey);
        publicKey = input.publicKey;
      }
    } catch (e) {
      if (e instanceof IssuerKeysError) throw new InvalidRequestError(e.message);
      throw e;
    }
    const boundClaims: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(input.boundClaims ?? {})) {
      const list = Array.isArray(v) ? v : [v];
      if (list.length === 0 || !list.every((x) => typeof x === 'string' && x.length > 0))
        throw new InvalidRequestError(`bound claim ${k.slice(0, 40)} needs one or more non-empty strings`);
      boundClaims[k] = list;
    }
    if (Object.keys(boundClaims).length > MAX_CLAIMS || (input.requiredClaims ?? []).length > MAX_CLAIMS)
      throw new InvalidRequestError(`at most ${MAX_CLAIMS} bound and ${MAX_CLAIMS} required claims`);
    return {
      name: input.name,
      issuer: input.issuer,
      audience: input.audience,
      scopes,
      ttlMs,
      boundClaims,
      boundSubject: input.boundSubject ?? null,
      requiredClaims: [...new Set(input.requiredClaims ?? [])],
      jwksUrl: input.jwksUrl === undefined ? null : httpUrl(input.jwksUrl, 'jwksUrl'),
      jwks,
      publicKey,
      createdAt: Date.now(),
      createdBy: p.tokenId,
    };
  }

  /** Bound claims, sub pattern and required claims; the reason names the claim, never its value. */
  function matchClaims(role: JwtRoleRow, payload: JWTPayload): string | null {
    for (const c of role.requiredClaims) if (own(payload, c) === undefined) return `required claim ${c} is missing`;
    if (
      role.boundSubject !== null &&
      (typeof payload.sub !== 'string' || payload.sub.length > MAX_CLAIM_CHARS || !globMatch(role.boundSubject, payload.sub))
    )
      return "sub does not match the role's subject pattern";
    for (const [claim, patterns] of Object.entries(role.boundClaims)) {
      const v = own(payload, claim);
      if (Array.isArray(v) && v.length > 100) return `claim ${claim} has more than 100 elements`;
      const values = (Array.isArray(v) ? v : [v]).map(claimText).filter((x): x is string => x !== null && x.length <= MAX_CLAIM_CHARS);
      if (!values.some((x) => patterns.some((p) => globMatch(p, x)))) return `claim ${claim} does not match the role`;
    }
    return null;
  }

  /** The claims a token and its audit event carry: iss, sub and the role's bound claims (values cut to 200 characters). */
  function claimsOf(role: JwtRoleRow | null, payload: JWTPayload): Record<string, unknown> {
    const out: Record<string, unknown> = {
      iss: claimText(own(payload, 'iss'))?.slice(0, 200) ?? null,
      sub: claimText(own(payload, 'sub'))?.slice(0, 200) ?? null,
    };
    if (own(payload, 'unverified') === true) out.unverified = true;
    for (const c of Object.keys(role?.boundClaims ?? {})) {
      const v = own(payload, c);
      out[c] = Array.isArray(v) ? v.slice(0, 10).map((x) => claimText(x)?.slice(0, 200) ?? null) : (claimText(v)?.slice(0, 200) ?? null);
    }
    return out;
  }

  /** What a role matches and where its keys come from, for its audit events (an inline key as its SHA-256). */
  function roleDetail(r: JwtRoleRow): Record<string, unknown> {
    const keyText = r.jwks ?? r.publicKey;
    return {
      issuer: r.issuer,
      audience: r.audience,
      scopes: r.scopes,
      ttl: formatDuration(r.ttlMs),
      keySource: publicRole(r).keySource,
      jwksUrl: r.jwksUrl,
      keySha256: keyText === null ? null : createHash('sha256').update(keyText).digest('hex'),
      boundClaims: r.boundClaims,
      boundSubject: r.boundSubject,
      requiredClaims: r.requiredClaims,
      createdBy: r.createdBy,
    };
  }

  async function verify(role: JwtRoleRow, jwt: string): Promise<JWTPayload> {
    const { decodeJwt, decodeProtectedHeader, errors, jwtVerify } = await loadJose();
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(jwt).alg;
    } catch {
      throw new JwtLoginFailed('the JWT is malformed');
    }
    if (!(JWT_ALGORITHMS as readonly unknown[]).includes(alg))
      throw new JwtLoginFailed(`algorithm ${String(alg).slice(0, 20)} is not allowed (RS256, ES256, EdDSA only)`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, keys.keyFor(role), {
        issuer: role.issuer,
        audience: role.audience,
        algorithms: [...JWT_ALGORITHMS],
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['exp', 'aud', 'iss'],
      }));
    } catch (e) {
      // For the audit event only: who the JWT claims to be, unverified (the event says so).
      let claimed: Record<string, unknown> = {};
      try {
        claimed = { ...decodeJwt(jwt), unverified: true };
      } catch {
        /* not even decodable */
      }
      throw new JwtLoginFailed(reasonOf(e, errors), claimed);
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat === 'number' && payload.iat > now + CLOCK_SKEW_S) throw new JwtLoginFailed('iat is in the future', payload);
    const bad = matchClaims(role, payload);
    if (bad) throw new JwtLoginFailed(bad, payload);
    return payload;
  }

  function reasonOf(e: unknown, errors: typeof import('jose').errors): string {
    if (e instanceof IssuerKeysError) return `issuer keys unavailable: ${e.message}`;
    if (e instanceof errors.JWTExpired) return 'the JWT has expired';
    if (e instanceof errors.JWTClaimValidationFailed) return `claim check failed: ${e.claim} ${e.reason}`.slice(0, 200);
    if (e instanceof errors.JWSSignatureVerificationFailed) return "the signature does not verify with the issuer's keys";
    if (e instanceof errors.JWKSNoMatchingKey) return "no issuer key matches the JWT's kid";
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
        await record({ action: 'auth.role.create', outcome: 'ok', target: { role: row.name }, detail: roleDetail(row) });
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
        await record({ action: 'auth.role.delete', outcome: 'ok', target: { role: name }, detail: roleDetail(r) });
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
        if (!role) {
          let claimed: Record<string, unknown> = {};
          try {
            claimed = { ...(await loadJose()).decodeJwt(jwt), unverified: true };
          } catch {
            /* not decodable */
          }
          throw new JwtLoginFailed('the role does not exist', claimed);
        }
        if (jwt.length > MAX_JWT_CHARS) throw new JwtLoginFailed(`the JWT is longer than ${MAX_JWT_CHARS} characters`);
        const payload = await verify(role, jwt);
        const expiresAt = Math.min(now + role.ttlMs, (payload.exp as number) * 1000);
        if (expiresAt <= now) throw new JwtLoginFailed('the JWT expires now', payload);
        const claims = claimsOf(role, payload);
        let issued;
        try {
          issued = await tokens.issue(
            {
              name: `jwt:${role.name}`,
              description: redactTokens(
                `JWT login via role ${role.name}: ${Object.entries(claims)
                  .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                  .join(' ')}`,
              ).slice(0, 1000),
              scopes: role.scopes,
              expiresAt,
              parentId: role.createdBy,
              ip,
            },
            ctx,
            {
              // A role deleted (or replaced) while this login was verifying issues nothing.
              check: async (tx) => {
                const still = await roles.get(role.name, tx);
                if (!still || still.createdAt !== role.createdAt)
                  throw new IssueRefused('the role was deleted while the login was verified');
              },
              event: (tokenId, t) => ({
                action: 'auth.jwt.login',
                outcome: 'ok',
                target: { role: role.name, tokenId },
                detail: { claims, scopes: role.scopes, expiresAt: new Date(t.expiresAt).toISOString(), cidrs: t.cidrs },
              }),
            },
          );
        } catch (e) {
          if (e instanceof IssueRefused) throw new JwtLoginFailed(e.message, payload);
          throw e;
        }
        return {
          token: issued.token,
          id: issued.id,
          expiresAt: new Date(issued.expiresAt).toISOString(),
          scopes: issued.scopes,
          role: role.name,
        };
      } catch (e) {
        if (!(e instanceof JwtLoginFailed)) throw e;
        if (ip !== null) await tokens.recordFailure(ip, now);
        const detail = { reason: e.reason, claims: claimsOf(role, e.claims) };
        // Only a name that could be a role is recorded: anything else (a token pasted there, with or without its prefix) is not.
        const shown = RESOURCE_NAME_RE.test(roleName) ? redactTokens(roleName) : '[not a role name]';
        log.info({ role: shown, reason: e.reason }, 'JWT login refused');
        await audit
          .record(ctx, { action: 'auth.jwt.login', outcome: 'denied', target: { role: shown }, detail })
          .catch((err: Error) => log.error({ err: { message: err.message } }, 'could not record the refused JWT login'));
        throw e;
      }
    },
  };
}
export type JwtAuthService = ReturnType<typeof jwtAuthServiceFactory>;
