import { webhooksApi } from './webhooks.js';
import { checkTokenFormat } from './token-format.js';
import { AuthError, isHushError, ValidationError, type HushError } from './errors.js';
import { createJwtTokenSource } from './jwt-auth.js';
import { createTransport, sleep, type HttpRequest } from './http.js';
import { env, fetchFor, largeBodyFetchFor, MAX_TIMER_MS, normaliseAddr, positive, retryPolicy, tokenFrom } from './config.js';
import { DEFAULT_ADDR, type AuditIterateOptions, type ClientOptions, type GetAllOptions, type WarningInfo } from './options.js';
import type { HushClient, SecretsApi } from './api.js';
import type {
  AuditEvent,
  AuditQuery,
  BackupDownload,
  BackupExportOptions,
  CallOptions,
  Environment,
  JwtLogin,
  JwtRole,
  NotModified,
  Project,
  SecretsSnapshot,
  StaleSecret,
  TokenInfo,
} from './types.js';

export * from './options.js';
export type * from './api.js';

/** "42s", "3m 12s", "5h 2m", "2d 4h". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

const seg = encodeURIComponent;
const envPath = (p: string, e: string) => `/v1/projects/${seg(p)}/envs/${seg(e)}`;

function timeParam(v: Date | number | string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

type FallbackModule = typeof import('./fallback.js');

/** Checks `{ auth }` and what it cannot be combined with. */
function checkAuth(options: ClientOptions): void {
  const a = options.auth!;
  if (options.token !== undefined || options.tokenFile !== undefined) {
    throw new ValidationError(
      'invalid_config',
      `give either ${options.token !== undefined ? '{ token }' : '{ tokenFile }'} or { auth } to ` + `createClient, not both`,
    );
  }
  if (typeof a !== 'object' || a === null || typeof a.role !== 'string' || a.role.trim() === '')
    throw new ValidationError('invalid_config', 'auth.role must name a JWT role');
  if (typeof a.jwt !== 'function')
    throw new ValidationError('invalid_config', 'auth.jwt must be a function returning the JWT (or a promise of it)');
  if (options.fallback)
    throw new ValidationError(
      'invalid_config',
      'the fallback cache is keyed by a fixed token and cannot be used with { auth }, whose tokens ' + 'change at every login',
    );
}

/**
 * Creates a client. Reads HUSH_ADDR, HUSH_TOKEN (or HUSH_TOKEN_FILE) and
 * HUSH_CA_FILE for options not given,
 * and checks the token's checksum offline: a malformed token throws
 * AuthError `token_malformed` here, before any request (the message never
 * includes the token). A client without any token can still call `health()`;
 * other calls then reject with AuthError `token_missing`. With `auth` the
 * client logs in with a JWT instead, when a call first needs a token.
 *
 * @example
 * ```ts
 * import { createClient } from 'hush-vault-sdk';
 *
 * const client = createClient(); // HUSH_ADDR + HUSH_TOKEN
 * const { secrets } = await client.secrets.getAll('api', 'prod');
 *
 * const machine = createClient({ auth: { role: 'deploy', jwt: () => readFileSync('/var/run/secrets/tokens/hush', 'utf8') } });
 * ```
 */
export function createClient(options: ClientOptions = {}): HushClient {
  const addr = normaliseAddr(options.addr ?? env('HUSH_ADDR') ?? DEFAULT_ADDR);
  if (options.auth !== undefined) checkAuth(options);
  // With auth the token comes from logins, and HUSH_TOKEN / HUSH_TOKEN_FILE are not read.
  const { token: rawToken, source: tokenSource } = options.auth ? { token: undefined, source: 'auth' } : tokenFrom(options);
  const token = rawToken?.trim() || undefined;
  let tokenProblem: HushError | undefined;
  if (token === undefined && !options.auth) {
    tokenProblem = new AuthError(
      'token_missing',
      rawToken === undefined
        ? 'no API token: pass { token } to createClient, or set HUSH_TOKEN or HUSH_TOKEN_FILE'
        : `${tokenSource} is empty`,
    );
  } else if (token !== undefined) {
    const check = checkTokenFormat(token);
    if (!check.ok) throw new AuthError('token_malformed', `${tokenSource} is not a valid Hush token: ${check.reason}`);
  }
  const timeoutMs = positive('timeoutMs', options.timeoutMs, 10_000, false, MAX_TIMER_MS);
  const fallback = options.fallback
    ? { path: options.fallback.path, maxAgeMs: positive('fallback.maxAgeMs', options.fallback.maxAgeMs, 24 * 3600_000) }
    : null;
  if (fallback && (typeof fallback.path !== 'string' || fallback.path === ''))
    throw new ValidationError('invalid_config', 'fallback.path must be a file path');
  const warn = (message: string, info: WarningInfo) => {
    try {
      if (options.onWarning) options.onWarning(message, info);
      else console.warn(message);
    } catch {
      /* a throwing warning handler must not change the call's outcome */
    }
  };

  let fallbackModule: Promise<FallbackModule> | null = null;
  const cache = () => (fallbackModule ??= import('./fallback.js'));

  // A login may be repeated after a lost answer (it only issues another short-lived token), so it is retried like a GET.
  async function jwtLogin(role: string, jwt: string, o?: CallOptions): Promise<JwtLogin> {
    try {
      return await call<JwtLogin>({
        method: 'POST',
        path: '/v1/auth/jwt/login',
        body: { role, jwt },
        auth: false,
        retry: 'idempotent',
        ...opts(o),
      });
    } catch (e) {
      // A call that needed a login says so: its own error would otherwise be about a request the caller never made.
      if (isHushError(e) && e.status !== undefined)
        e.message = /^JWT login/.test(e.message) ? `${e.message} (role "${role}")` : `JWT login to role "${role}" failed: ${e.message}`;
      throw e;
    }
  }

  const transportFetch = fetchFor(options);
  const http = createTransport({
    addr,
    token,
    tokenProblem,
    timeoutMs,
    retry: retryPolicy(options.retries),
    tokenSource: options.auth
      ? createJwtTokenSource(options.auth.role.trim(), options.auth.jwt, (role, jwt) => jwtLogin(role, jwt))
      : undefined,
    fetch: transportFetch,
    largeBodyFetch: largeBodyFetchFor(options, transportFetch),
    // A 401 means the token is dead for every entry: drop the whole cache.
    onError: fallback
      ? async (err) => {
          if (err.status === 401) await (await cache()).removeFile(fallback.path).catch(() => undefined);
        }
      : undefined,
  });

  /**
   * Secrets as a map without a prototype: a secret named __proto__,
   * constructor or toString is an entry like any other, and a name that is
   * not a secret is never answered by Object.prototype.
   */
  const nullProto = (o: Record<string, string>): Record<string, string> => Object.assign(Object.create(null) as Record<string, string>, o);

  const call = async <T>(req: HttpRequest): Promise<T> => (await http.request<T>(req)).data;
  const opts = (o: CallOptions | undefined) => ({ signal: o?.signal, timeoutMs: o?.timeoutMs });

  async function getAll(project: string, envName: string, o: GetAllOptions = {}): Promise<SecretsSnapshot | NotModified> {
    const conditional = o.ifNoneMatch !== undefined;
    const useCache = fallback !== null && o.fallback !== false && !conditional && !o.raw && token !== undefined;
    const only = o.only && o.only.length ? [...o.only] : null;
    try {
      const res = await http.request<{ secrets: Record<string, string>; revision: number }>({
        method: 'GET',
        path: `${envPath(project, envName)}/secrets`,
        query: {
          only: only?.join(','),
          raw: o.raw ? '1' : undefined,
          wait: conditional && o.wait ? Math.min(60, Math.max(0, Math.floor(o.wait))) : undefined,
        },
        headers: conditional ? { 'if-none-match': o.ifNoneMatch! } : undefined,
        allow304: conditional,
        ...opts(o),
      });
      if (res.status === 304) return { notModified: true, etag: res.headers.get('etag') ?? o.ifNoneMatch! };
      const snap: SecretsSnapshot = {
        notModified: false,
        secrets: nullProto(res.data.secrets),
        revision: res.data.revision,
        etag: res.headers.get('etag'),
        fromCache: false,
        ageMs: 0,
      };
      if (useCache) {
        try {
          await (
            await cache()
          ).saveEntry(fallback.path, token, addr, project, envName, {
            secrets: snap.secrets,
            revision: snap.revision,
            only,
            savedAt: Date.now(),
          });
        } catch (err) {
          warn(`hush: could not write the fallback cache for ${project}/${envName}: ${(err as Error).message}`, {
            kind: 'fallback_write_failed',
            project,
            env: envName,
            error: err as Error,
          });
        }
      }
      return snap;
    } catch (err) {
      if (!useCache || !isHushError(err)) throw err;
      const m = await cache();
      if (err.status === 403) {
        await m.removeEntry(fallback.path, addr, project, envName).catch(() => undefined);
        throw err;
      }
      const unreachable =
        (err.code === 'network_error' && err.status === undefined) ||
        err.code === 'timeout' ||
        (err.status !== undefined && err.status >= 500);
      if (!unreachable) throw err;
      let entry: Awaited<ReturnType<FallbackModule['loadEntry']>>;
      try {
        entry = await m.loadEntry(fallback.path, token, addr, project, envName);
      } catch (readErr) {
        const why = (readErr as NodeJS.ErrnoException).code ?? 'it was written with another token, or altered';
        warn(
          `hush: server unreachable (${err.code}) and the fallback cache ${fallback.path} cannot be used ` + `(${why}); not serving it`,
          { kind: 'fallback_unreadable', project, env: envName, error: err },
        );
        throw err;
      }
      if (!entry) throw err;
      // A cache filtered with `only` can answer only a request for a subset of those names.
      if (entry.only && (!only || !only.every((k) => entry.only!.includes(k)))) throw err;
      const ageMs = Math.max(0, Date.now() - entry.savedAt);
      if (ageMs > fallback.maxAgeMs) {
        warn(
          `hush: server unreachable (${err.code}) and the fallback cache for ${project}/${envName} is ` +
            `${formatAge(ageMs)} old, older than the ${formatAge(fallback.maxAgeMs)} limit; not serving it`,
          { kind: 'fallback_too_old', project, env: envName, ageMs, error: err },
        );
        throw err;
      }
      let secrets = nullProto(entry.secrets);
      if (only) secrets = nullProto(Object.fromEntries(Object.entries(secrets).filter(([k]) => only.includes(k))));
      warn(
        `hush: server unreachable (${err.code}); serving ${project}/${envName} from the fallback cache ` +
          `saved ${formatAge(ageMs)} ago (revision ${entry.revision})`,
        { kind: 'fallback_served', project, env: envName, ageMs, error: err },
      );
      return { notModified: false, secrets, revision: entry.revision, etag: null, fromCache: true, ageMs };
    }
  }

  async function* iterateAudit(query: AuditQuery = {}, o: AuditIterateOptions = {}): AsyncIterableIterator<AuditEvent> {
    if (o.follow && query.order === 'desc') throw new ValidationError('invalid_request', 'audit.iterate with follow needs ascending order');
    let cursor = query.cursor;
    for (;;) {
      const page = await client.audit.list({ ...query, cursor }, opts(o));
      for (const ev of page.events) yield ev;
      if (page.events.length) cursor = String(page.events[page.events.length - 1].seq);
      if (page.nextCursor !== null) {
        cursor = page.nextCursor;
        continue;
      }
      if (!o.follow) return;
      await sleep(o.pollMs ?? 2000, o.signal);
    }
  }

  async function createBackup(o: BackupExportOptions): Promise<BackupDownload> {
    const { signal, timeoutMs: t, ...body } = o;
    const res = await http.request({
      method: 'POST',
      path: '/v1/backups',
      body,
      stream: true,
      signal,
      timeoutMs: t,
      headers: { accept: 'application/octet-stream, application/pgp-encrypted, application/json' },
    });
    let counts: Record<string, number> | null;
    try {
      counts = JSON.parse(res.headers.get('x-hush-backup-counts') ?? 'null') as Record<string, number> | null;
    } catch {
      counts = null;
    }
    const fileName = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? null;
    return {
      body: res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }),
      fileName,
      counts,
      contentType: res.headers.get('content-type'),
    };
  }

  const client: HushClient = {
    addr,
    health: (o) => call({ method: 'GET', path: '/v1/sys/health', auth: false, ...opts(o) }),
    projects: {
      list: async (o) => (await call<{ projects: Project[] }>({ method: 'GET', path: '/v1/projects', ...opts(o) })).projects,
      create: (name, o) => call({ method: 'POST', path: '/v1/projects', body: { name }, ...opts(o) }),
      delete: (name, o) => call({ method: 'DELETE', path: `/v1/projects/${seg(name)}`, ...opts(o) }),
      rotateKey: (name, o) =>
        call({
          method: 'POST',
          path: `/v1/projects/${seg(name)}/rotate`,
          body: o?.rewrap !== undefined ? { rewrap: o.rewrap } : {},
          ...opts(o),
        }),
    },
    envs: {
      list: async (p, o) => (await call<{ envs: Environment[] }>({ method: 'GET', path: `/v1/projects/${seg(p)}/envs`, ...opts(o) })).envs,
      create: (p, name, o) => call({ method: 'POST', path: `/v1/projects/${seg(p)}/envs`, body: { name }, ...opts(o) }),
      delete: (p, name, o) => call({ method: 'DELETE', path: envPath(p, name), ...opts(o) }),
    },
    secrets: {
      getAll: getAll as SecretsApi['getAll'],
      get: (p, e, key, o) =>
        call({
          method: 'GET',
          path: `${envPath(p, e)}/secrets/${seg(key)}`,
          query: { version: o?.version, raw: o?.raw ? '1' : undefined },
          ...opts(o),
        }),
      set: (p, e, key, value, o) =>
        call({
          method: 'PUT',
          path: `${envPath(p, e)}/secrets/${seg(key)}`,
          body: o?.cas !== undefined ? { value, cas: o.cas } : { value },
          retry: o?.cas !== undefined ? 'rate-limit-only' : 'idempotent',
          ...opts(o),
        }),
      delete: (p, e, key, o) => call({ method: 'DELETE', path: `${envPath(p, e)}/secrets/${seg(key)}`, ...opts(o) }),
      bulk: (p, e, change, o) =>
        call({
          method: 'PATCH',
          path: `${envPath(p, e)}/secrets`,
          body: { ...(change.set ? { set: change.set } : {}), ...(change.delete ? { delete: change.delete } : {}) },
          ...opts(o),
        }),
      versions: (p, e, key, o) => call({ method: 'GET', path: `${envPath(p, e)}/secrets/${seg(key)}/versions`, ...opts(o) }),
      listNames: (p, e, o) => call({ method: 'GET', path: `${envPath(p, e)}/keys`, ...opts(o) }),
      history: (p, e, o) =>
        call({ method: 'GET', path: `${envPath(p, e)}/history`, query: { limit: o?.limit, before: o?.before }, ...opts(o) }),
      diff: (p, e, o) =>
        call({
          method: 'GET',
          path: `${envPath(p, e)}/diff`,
          query: {
            fromRevision: o.fromRevision,
            toRevision: o.toRevision,
            other: o.other ? `${o.other.project}/${o.other.env}` : undefined,
            values: o.values ? 'true' : undefined,
          },
          ...opts(o),
        }),
      rollback: (p, e, toRevision, o) => call({ method: 'POST', path: `${envPath(p, e)}/rollback`, body: { toRevision }, ...opts(o) }),
      copy: (from, to, o) =>
        call({
          method: 'POST',
          path: `${envPath(to.project, to.env)}/copy`,
          body: { from: { project: from.project, env: from.env }, ...(o?.only ? { only: o.only } : {}) },
          ...opts(o),
        }),
      // Not retried: a retry after a lost answer would store a second new value.
      generate: (p, e, key, input, o) =>
        call({ method: 'POST', path: `${envPath(p, e)}/secrets/${seg(key)}/generate`, body: input, ...opts(o) }),
      policy: (p, e, key, o) => call({ method: 'GET', path: `${envPath(p, e)}/secrets/${seg(key)}/policy`, ...opts(o) }),
      setPolicy: (p, e, key, input, o) =>
        call({ method: 'PUT', path: `${envPath(p, e)}/secrets/${seg(key)}/policy`, body: input, retry: 'idempotent', ...opts(o) }),
      stale: async (o) => (await call<{ secrets: StaleSecret[] }>({ method: 'GET', path: '/v1/secrets/stale', ...opts(o) })).secrets,
    },
    tokens: {
      create: (input, o) => call({ method: 'POST', path: '/v1/tokens', body: input, ...opts(o) }),
      list: async (o) =>
        (
          await call<{ tokens: TokenInfo[] }>({
            method: 'GET',
            path: '/v1/tokens',
            query: { name: o?.name, includeRevoked: o?.includeRevoked ? 'true' : undefined },
            ...opts(o),
          })
        ).tokens,
      self: (o) => call({ method: 'GET', path: '/v1/tokens/self', ...opts(o) }),
      revoke: (id, o) => call({ method: 'DELETE', path: `/v1/tokens/${seg(id)}`, ...opts(o) }),
    },
    audit: {
      list: (q = {}, o) =>
        call({
          method: 'GET',
          path: '/v1/audit',
          query: {
            from: timeParam(q.from),
            to: timeParam(q.to),
            actor: q.actor,
            action: q.action,
            project: q.project,
            env: q.env,
            outcome: q.outcome,
            cursor: q.cursor,
            limit: q.limit,
            order: q.order,
          },
          ...opts(o),
        }),
      iterate: iterateAudit,
      verify: (o) =>
        call({
          method: 'GET',
          path: '/v1/audit/verify',
          ...opts(o),
          query: o?.anchor ? { anchorSeq: String(o.anchor.seq), anchorHash: o.anchor.hash } : undefined,
        }),
    },
    keys: {
      rotateMaster: (newKey, o) =>
        call({ method: 'POST', path: '/v1/sys/rotate-master', body: newKey === undefined ? { generate: true } : { newKey }, ...opts(o) }),
    },
    sys: {
      sealStatus: (o) => call({ method: 'GET', path: '/v1/sys/seal-status', auth: false, ...opts(o) }),
      unseal: (input, o) => call({ method: 'POST', path: '/v1/sys/unseal', body: input, auth: false, retry: 'never', ...opts(o) }),
      seal: (input, o) => call({ method: 'POST', path: '/v1/sys/seal', body: input ?? {}, ...opts(o) }),
    },
    auth: {
      login: (role, jwt, o) => jwtLogin(role, jwt, o),
      roles: {
        create: (input, o) => call({ method: 'POST', path: '/v1/auth/jwt/roles', body: input, ...opts(o) }),
        list: async (o) => (await call<{ roles: JwtRole[] }>({ method: 'GET', path: '/v1/auth/jwt/roles', ...opts(o) })).roles,
        get: (name, o) => call({ method: 'GET', path: `/v1/auth/jwt/roles/${seg(name)}`, ...opts(o) }),
        delete: (name, o) => call({ method: 'DELETE', path: `/v1/auth/jwt/roles/${seg(name)}`, ...opts(o) }),
      },
    },
    webhooks: webhooksApi(call, opts),
    backups: {
      create: createBackup,
      export: async (o) => (await createBackup(o)).body,
    },
    request: (method, path, o = {}) => call({ method, path, body: o.body, query: o.query, auth: o.auth, ...opts(o) }),
  };
  return client;
}
