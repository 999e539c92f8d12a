// Shapes of the JWT (machine identity) API as the SDK returns them (re-exported by types.ts).

/**
 * Answer of `auth.login` (`POST /v1/auth/jwt/login`): a short-lived Hush
 * token for a machine that proved its identity with a JWT. The token lives
 * for the role's `ttl`, and never past the JWT's own `exp`.
 */
export interface JwtLogin {
  /** The Hush token (`hush_...`). Never log it. */
  token: string;
  /** Token id (`tok_...`), as `tokens.list` and the audit log show it. */
  id: string;
  /** When the token stops working. */
  expiresAt: string;
  /** The role's grants, which the token carries. */
  scopes: string[];
  /** The role logged in to. */
  role: string;
}

/**
 * Where a role's verification keys come from: the issuer's OIDC discovery
 * document (`discovery`, when no key source was given), a JWKS URL, a JWKS
 * stored with the role, or one PEM public key.
 */
export type JwtKeySource = 'discovery' | 'jwks_url' | 'jwks' | 'public_key';

/**
 * A JWT role: which JWTs may log in (issuer, audience, claims) and what the
 * resulting token may do (scopes, ttl). See docs/machine-identity.md.
 */
export interface JwtRole {
  name: string;
  /** Expected `iss`, exactly. */
  issuer: string;
  /** Expected value in `aud`. */
  audience: string;
  /** Grants of the tokens the role issues. */
  scopes: string[];
  /** Token lifetime as given (`15m`). */
  ttl: string;
  /** The same in seconds. */
  ttlSeconds: number;
  /** Claim name to the values it may have (any of them matches); `*` globs. */
  boundClaims: Record<string, string[]>;
  /** Glob the `sub` claim must match, or null for any. */
  boundSubject: string | null;
  /** Claims that must be present. */
  requiredClaims: string[];
  /** How the JWT's signature is checked. */
  keySource: JwtKeySource;
  /** The JWKS URL when `keySource` is `jwks_url`, else null. */
  jwksUrl: string | null;
  createdAt: string;
  /** Id of the token that created the role. */
  createdBy: string;
}

/**
 * Input of `auth.roles.create`. Give at most one of `jwksUrl`, `jwks` and
 * `publicKey`; with none, the server finds the keys through the issuer's
 * OIDC discovery document (`ISSUER/.well-known/openid-configuration`).
 *
 * @example
 * ```ts
 * const input: JwtRoleCreateInput = {
 *   name: 'deploy', issuer: 'https://token.actions.githubusercontent.com', audience: 'hush',
 *   boundClaims: { repository: 'acme/api', ref: ['refs/heads/main', 'refs/tags/v*'] },
 *   scopes: ['read:api/prod'], ttl: '15m',
 *   jwksUrl: 'https://token.actions.githubusercontent.com/.well-known/jwks',
 * };
 * ```
 */
export interface JwtRoleCreateInput {
  /** Role name, used at login. */
  name: string;
  /** Expected `iss`, exactly. */
  issuer: string;
  /** Expected value in `aud`. */
  audience: string;
  /** Grants of the tokens it issues: `read:P/E`, `list:P/E`, `write:P/E`, `admin:P`. */
  scopes: string[];
  /** Token lifetime, e.g. `15m` (never past the JWT's `exp`). */
  ttl: string;
  /** Claim name to required value; a list means any of them; `*` globs. */
  boundClaims?: Record<string, string | string[]>;
  /** Glob the `sub` claim must match. */
  boundSubject?: string;
  /** Claims that must be present. */
  requiredClaims?: string[];
  /** URL of the issuer's JWKS, fetched (and cached) by the server. */
  jwksUrl?: string;
  /** A JWKS document (`{ keys: [...] }`) of public keys, kept with the role. */
  jwks?: { keys: Record<string, unknown>[] } & Record<string, unknown>;
  /** One PEM public key (`-----BEGIN PUBLIC KEY-----`). */
  publicKey?: string;
}

/** Result of `auth.roles.delete`. */
export interface JwtRoleDeleted {
  name: string;
  deleted: true;
}
