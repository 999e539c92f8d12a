import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from 'jose';

/** jose, loaded on first use: a server that never sees a JWT login does not carry it (about 10 MB). */
let joseModule: Promise<typeof import('jose')> | null = null;
export const loadJose = (): Promise<typeof import('jose')> => (joseModule ??= import('jose'));
import type { JwtRoleRow } from '../../store/jwt-role-store.js';

/**
 * Where a role's issuer keys come from, and the cache of remote ones
 * (docs/machine-identity.md, "Verification"):
 * - a JWKS given inline (`--jwks-file`) or a PEM public key
 *   (`--public-key-file`), for an issuer the server cannot reach;
 * - a JWKS URL (`--jwks-url`);
 * - otherwise OIDC discovery: `<issuer>/.well-known/openid-configuration`,
 *   whose `issuer` must equal the role's and whose `jwks_uri` names the JWKS.
 * Remote documents are fetched with a timeout and a size limit, cached for
 * 10 minutes, and fetched again when a JWT names a `kid` the cached set
 * lacks (at most once a second per URL, so a flood of unknown kids cannot
 * make the server hammer the issuer).
 */

/** The only signature algorithms a login accepts: never `none`, never an HMAC (HS*) keyed with a public key. */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

export const FETCH_TIMEOUT_MS = 5_000;
export const MAX_JWKS_BYTES = 256 * 1024;
const MAX_DISCOVERY_BYTES = 64 * 1024;
const CACHE_MAX_AGE_MS = 10 * 60_000;
const REFETCH_COOLDOWN_MS = 1_000;
const MAX_CACHED_URLS = 1_000;

/** A key source that could not be used; the message is for the audit event and the log, never the caller. */
export class IssuerKeysError extends Error {}

/** GETs a JSON document of at most `max` bytes within FETCH_TIMEOUT_MS. */
async function fetchJson(url: string, max: number, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' }, redirect: 'follow' });
  } catch (e) {
    const name = (e as Error).name;
    throw new IssuerKeysError(
      name === 'TimeoutError' || name === 'AbortError'
        ? `${what} ${url} did not answer within ${FETCH_TIMEOUT_MS} ms`
        : `${what} ${url} could not be fetched (${(e as { cause?: Error }).cause?.message ?? (e as Error).message})`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new IssuerKeysError(`${what} ${url} answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new IssuerKeysError(`${what} ${url} is larger than ${max} bytes`);
  }
  const reader = res.body?.getReader() as ReadableStreamDefaultReader<Uint8Array> | undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (reader) {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        total += r.value.byteLength;
        if (total > max) {
          await reader.cancel().catch(() => undefined);
          throw new IssuerKeysError(`${what} ${url} is larger than ${max} bytes`);
        }
        chunks.push(r.value);
      }
    } catch (e) {
      if (e instanceof IssuerKeysError) throw e;
      const name = (e as Error).name;
      throw new IssuerKeysError(
        name === 'TimeoutError' || name === 'AbortError'
          ? `${what} ${url} did not finish within ${FETCH_TIMEOUT_MS} ms`
          : `${what} ${url} could not be read`,
      );
    }
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new IssuerKeysError(`${what} ${url} is not JSON`);
  }
}

/** The algorithm a JWK would verify with, among the allowed ones, or null. */
function algOf(k: JWK): string | null {
  if (k.kty === 'RSA') return 'RS256';
  if (k.kty === 'EC' && k.crv === 'P-256') return 'ES256';
  if (k.kty === 'OKP' && k.crv === 'Ed25519') return 'EdDSA';
  return null;
}

/**
 * Checks a JWKS document: a "keys" array of 1 to 100 JWKs, at least one of
 * them a usable RSA, P-256 or Ed25519 public key (others, e.g. encryption
 * keys, are left to jose to skip). Throws IssuerKeysError.
 */
export async function checkJwks(doc: unknown, where: string): Promise<JSONWebKeySet> {
  const keys = (doc as { keys?: unknown })?.keys;
  if (
    !Array.isArray(keys) ||
    keys.length === 0 ||
    keys.length > 100 ||
    !keys.every((k) => k && typeof k === 'object' && typeof (k as { kty?: unknown }).kty === 'string')
  ) {
    throw new IssuerKeysError(`${where} is not a JWKS (a JSON object with a "keys" array of 1 to 100 JWKs)`);
  }
  const { importJWK } = await loadJose();
  let usable = 0;
  for (const k of keys as JWK[]) {
    const alg = algOf(k);
    if (!alg || (k as { d?: unknown }).d !== undefined) continue;
    try {
      await importJWK(k, typeof k.alg === 'string' ? k.alg : alg);
      usable++;
    } catch {
      /* not a usable key */
    }
  }
  if (usable === 0) throw new IssuerKeysError(`${where} holds no usable public key (RSA, P-256 EC or Ed25519)`);
  return doc as JSONWebKeySet;
}

/** Checks a PEM public key: an RSA, P-256 or Ed25519 SubjectPublicKeyInfo. Resolves the algorithm it verifies. */
export async function checkPublicKey(pem: string): Promise<string> {
  const { importSPKI } = await loadJose();
  for (const alg of JWT_ALGORITHMS) {
    try {
      await importSPKI(pem, alg);
      return alg;
    } catch {
      /* try the next algorithm */
    }
  }
  throw new IssuerKeysError(
    'the public key is not a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") of an RSA, P-256 or Ed25519 key',
  );
}

interface Remote {
  jwks: JSONWebKeySet | null;
  get: JWTVerifyGetKey | null;
  fetchedAt: number;
  inflight: Promise<void> | null;
}

export function issuerKeysFactory() {
  const remotes = new Map<string, Remote>();
  const discovered = new Map<string, { jwksUri: string; at: number }>();
  const inline = new Map<string, JWTVerifyGetKey>();

  async function refresh(url: string, r: Remote): Promise<void> {
    const { createLocalJWKSet } = await loadJose();
    r.inflight ??= (async () => {
      try {
        const jwks = await checkJwks(await fetchJson(url, MAX_JWKS_BYTES, 'the JWKS at'), `the JWKS at ${url}`);
        r.jwks = jwks;
        r.get = createLocalJWKSet(jwks);
      } finally {
        r.fetchedAt = Date.now();
        r.inflight = null;
      }
    })();
    await r.inflight;
  }

  function remote(url: string): JWTVerifyGetKey {
    return async (header, token) => {
      const { errors } = await loadJose();
      let r = remotes.get(url);
      if (!r) {
        if (remotes.size >= MAX_CACHED_URLS) remotes.delete(remotes.keys().next().value!);
        remotes.set(url, (r = { jwks: null, get: null, fetchedAt: 0, inflight: null }));
      }
      if (!r.get || Date.now() - r.fetchedAt > CACHE_MAX_AGE_MS) await refresh(url, r);
      try {
        return await r.get!(header, token);
      } catch (e) {
        // A kid the cached set lacks: the issuer may have rotated its keys.
        if (!(e instanceof errors.JWKSNoMatchingKey) || Date.now() - r.fetchedAt < REFETCH_COOLDOWN_MS) throw e;
        await refresh(url, r);
        return r.get!(header, token);
      }
    };
  }

  async function discover(issuer: string): Promise<string> {
    const hit = discovered.get(issuer);
    if (hit && Date.now() - hit.at < CACHE_MAX_AGE_MS) return hit.jwksUri;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const doc = (await fetchJson(url, MAX_DISCOVERY_BYTES, 'the discovery document at')) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc?.issuer !== issuer)
      throw new IssuerKeysError(
        `the discovery document at ${url} names issuer ${JSON.stringify(String(doc?.issuer)).slice(0, 100)}, not ${issuer}`,
      );
    if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri))
      throw new IssuerKeysError(`the discovery document at ${url} has no http(s) jwks_uri`);
    if (discovered.size >= MAX_CACHED_URLS) discovered.delete(discovered.keys().next().value!);
    discovered.set(issuer, { jwksUri: doc.jwks_uri, at: Date.now() });
    return doc.jwks_uri;
  }

  return {
    /** The key resolver jose's jwtVerify calls for a JWT presented to `role`. */
    keyFor(role: JwtRoleRow): JWTVerifyGetKey {
      if (role.publicKey !== null) {
        const pem = role.publicKey;
        return async (header) => {
          const id = `pem:${role.name}:${role.createdAt}:${header.alg}`;
          let k = inline.get(id);
          if (!k) {
            const { importSPKI } = await loadJose();
            const key = await importSPKI(pem, header.alg);
            k = () => Promise.resolve(key);
            inline.set(id, k);
          }
          return k(header, undefined as never);
        };
      }
      if (role.jwks !== null) {
        const id = `jwks:${role.name}:${role.createdAt}`;
        const jwks = role.jwks;
        return async (header, token) => {
          let k = inline.get(id);
          if (!k) {
            const { createLocalJWKSet } = await loadJose();
            inline.set(id, (k = createLocalJWKSet(JSON.parse(jwks) as JSONWebKeySet)));
          }
          return k(header, token);
        };
      }
      if (role.jwksUrl !== null) return remote(role.jwksUrl);
      return async (header, token) => remote(await discover(role.issuer))(header, token);
    },

    /** Forgets what was cached for a deleted role. */
    forget(role: JwtRoleRow): void {
      for (const k of [...inline.keys()]) if (k.includes(`:${role.name}:${role.createdAt}`)) inline.delete(k);
    },
  };
}
export type IssuerKeys = ReturnType<typeof issuerKeysFactory>;
