import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { startServer, type TestServer } from '../helpers/server.js';
import {
  AuthError,
  ConflictError,
  createClient,
  ForbiddenError,
  HushError,
  isAuthError,
  isConflictError,
  isForbiddenError,
  isHushError,
  isNotFoundError,
  isRateLimitedError,
  isTimeoutError,
  isUnavailableError,
  isValidationError,
  NotFoundError,
  RateLimitedError,
  TimeoutError,
  UnavailableError,
  ValidationError,
  type HushClient,
} from 'hush-vault-sdk';
import { unknownToken } from './helpers.js';

let s: TestServer;
let root: HushClient;

before(async () => {
  s = await startServer();
  root = createClient({ addr: s.url, token: s.rootToken, retries: 0 });
  await root.projects.create('api');
  await root.envs.create('api', 'prod');
  await root.envs.create('api', 'dev');
  await root.secrets.set('api', 'prod', 'DB_PASSWORD', 'hunter2-very-secret');
});
after(async () => {
  await s.close();
});

describe('HTTP errors map to one class each', () => {
  test('401 with a well-formed but unknown token is an AuthError with code unauthorized', async () => {
    const c = createClient({ addr: s.url, token: unknownToken(), retries: 0 });
    const err = await c.projects.list().catch((e: unknown) => e);
    assert.ok(err instanceof AuthError);
    assert.ok(isAuthError(err) && isHushError(err));
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
    assert.match(err.requestId ?? '', /^req_[0-9a-f]{16}$/, "the server's own id (the SDK's sdk_ id is only recorded beside it)");
    assert.equal(err.method, 'GET');
    assert.equal(err.path, '/v1/projects');
  });

  test('a read:api/dev token cannot read api/prod (ForbiddenError)', async () => {
    const { token } = await root.tokens.create({ name: 'dev-reader', scopes: ['read:api/dev'] });
    const c = createClient({ addr: s.url, token, retries: 0 });
    const err = await c.secrets.getAll('api', 'prod').catch((e: unknown) => e);
    assert.ok(err instanceof ForbiddenError && isForbiddenError(err));
    assert.equal(err.code, 'forbidden');
    assert.equal(err.status, 403);
    assert.match(err.message, /read:api\/prod/);
  });

  test('404s are NotFoundError with the server code', async () => {
    // Each call starts when the loop reaches it: a promise made up front could reject before its .catch is attached.
    for (const [call, code] of [
      [() => root.secrets.get('api', 'prod', 'MISSING'), 'secret_not_found'],
      [() => root.secrets.getAll('api', 'nope'), 'env_not_found'],
      [() => root.envs.list('nope'), 'project_not_found'],
      [() => root.tokens.revoke('tok_doesnotexist'), 'token_not_found'],
      [() => root.request('GET', '/v1/no-such-route'), 'route_not_found'],
    ] as const) {
      const err = await call().catch((e: unknown) => e);
      assert.ok(err instanceof NotFoundError && isNotFoundError(err), String(err));
      assert.equal(err.code, code);
      assert.equal(err.status, 404);
    }
  });

  test('a failed check-and-set is a ConflictError carrying the current version', async () => {
    const err = await root.secrets.set('api', 'prod', 'DB_PASSWORD', 'other', { cas: 0 }).catch((e: unknown) => e);
    assert.ok(err instanceof ConflictError && isConflictError(err));
    assert.equal(err.code, 'cas_conflict');
    assert.equal(err.status, 409);
    assert.equal(err.details?.current, 1);
  });

  test('bad input is a ValidationError (400 invalid_request, 413 value_too_large)', async () => {
    const bad = await root.projects.create('Not Valid').catch((e: unknown) => e);
    assert.ok(bad instanceof ValidationError && isValidationError(bad));
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid_request');
    const big = await root.secrets.set('api', 'prod', 'HUGE', 'x'.repeat(100_000)).catch((e: unknown) => e);
    assert.ok(isValidationError(big), String(big));
    assert.equal(big.status, 413);
    assert.match(big.code, /too_large/);
  });

  test('error messages never contain the secret value or the token', async () => {
    const errs = await Promise.all([
      root.secrets.set('api', 'prod', 'DB_PASSWORD', 'hunter2-very-secret', { cas: 0 }).catch((e: unknown) => e),
      (() => {
        try {
          return createClient({ addr: s.url, token: s.rootToken.slice(0, -1) + (s.rootToken.endsWith('A') ? 'B' : 'A') });
        } catch (e) {
          return e;
        }
      })(),
    ]);
    assert.ok(isAuthError(errs[1]) && errs[1].code === 'token_malformed');
    for (const e of errs) {
      const text = JSON.stringify({ m: (e as Error).message, d: (e as HushError).details, s: String(e) });
      assert.ok(!text.includes('hunter2'));
      assert.ok(!text.includes(s.rootToken.slice(5, 30)));
    }
  });
});

describe('rate limiting', () => {
  test('429 is a RateLimitedError with retryAfterMs; a Retry-After beyond maxRetryAfterMs is not waited for', async () => {
    const limited = await startServer({ settings: { 'rate-limit': '5' } });
    try {
      const c = createClient({ addr: limited.url, token: limited.rootToken, retries: { limit: 3, maxRetryAfterMs: 1000 } });
      let err: unknown;
      const started = Date.now();
      for (let i = 0; i < 10 && !err; i++)
        err = await c.projects.list().then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof RateLimitedError && isRateLimitedError(err), String(err));
      assert.equal(err.code, 'rate_limited');
      assert.equal(err.status, 429);
      assert.ok((err.retryAfterMs ?? 0) > 1000, `retryAfterMs ${err.retryAfterMs}`);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await limited.close();
    }
  });
});

describe('offline errors and type guards', () => {
  test('UnavailableError, TimeoutError carry their codes and no status', () => {
    const u = new UnavailableError('network_error', 'x');
    const t = new TimeoutError('y', { timeoutMs: 5 });
    assert.ok(isUnavailableError(u) && !isTimeoutError(u));
    assert.ok(isTimeoutError(t) && t.code === 'timeout' && t.status === undefined && t.timeoutMs === 5);
    assert.ok(u instanceof HushError && u instanceof Error);
    assert.equal(u.name, 'UnavailableError');
  });

  test('guards match errors from another realm by brand and name, and reject look-alikes', () => {
    const foreign = runInNewContext(`
      const e = new Error('no such secret');
      e.name = 'NotFoundError'; e.code = 'secret_not_found'; e.status = 404;
      e[Symbol.for('hush.sdk.error')] = true;
      e`) as unknown;
    assert.ok(!(foreign instanceof Error));
    assert.ok(isHushError(foreign));
    assert.ok(isNotFoundError(foreign));
    assert.ok(!isConflictError(foreign));
    const lookalike = Object.assign(new Error('x'), { name: 'NotFoundError', code: 'secret_not_found' });
    assert.ok(!isHushError(lookalike) && !isNotFoundError(lookalike));
    for (const g of [isHushError, isAuthError, isNotFoundError]) {
      assert.equal(g(null), false);
      assert.equal(g('NotFoundError'), false);
    }
  });
});
