import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';
import { createClient, isUnavailableError, type ClientOptions, type WarningInfo } from 'hush-vault-sdk';
import { errorBody, scriptServer, type ScriptServer } from './helpers.js';

const SECRET = 'pg-password-Zq8v1xT3';
let s: TestServer;
let proxy: ScriptServer;
let dir: string;
let readToken: string;
const fast = { limit: 1, backoffMs: 5, maxBackoffMs: 10 };

before(async () => {
  s = await startServer({ settings: { 'auth-fail-limit': '1000' } });
  await s.api('POST', '/v1/projects', { name: 'api' });
  await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
  await s.api('POST', '/v1/projects/api/envs', { name: 'dev' });
  await s.api('PATCH', '/v1/projects/api/envs/prod/secrets', { set: { DB_PASSWORD: SECRET, PORT: '8080' } });
  await s.api('PUT', '/v1/projects/api/envs/dev/secrets/DEBUG', { value: 'true' });
  readToken = (await s.api('POST', '/v1/tokens', { name: 'app', scopes: ['read:api/*'] })).body.token;
  proxy = await scriptServer(s.url);
  dir = tempDir('hush-sdk-fallback-');
});
after(async () => {
  await proxy.close();
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function fallbackClient(path: string, extra: Partial<ClientOptions> = {}) {
  const warnings: { message: string; info: WarningInfo }[] = [];
  const client = createClient({
    addr: proxy.url,
    token: readToken,
    retries: fast,
    fallback: { path },
    onWarning: (message, info) => warnings.push({ message, info }),
    ...extra,
  });
  return { client, warnings };
}

const down = () => {
  proxy.script = () => ({ status: 503, body: errorBody('storage_unavailable') });
};
const up = () => {
  proxy.script = () => 'proxy';
};

describe('fallback cache', () => {
  test('after a successful getAll the cache is written 0600, encrypted, without the token', async () => {
    up();
    const path = join(dir, 'written', 'hush.cache');
    const { client } = fallbackClient(path);
    const r = await client.secrets.getAll('api', 'prod');
    assert.equal(r.fromCache, false);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const raw = readFileSync(path, 'utf8');
    assert.ok(!raw.includes(SECRET) && !raw.includes(Buffer.from(SECRET).toString('base64')));
    assert.ok(!raw.includes(readToken));
    assert.ok(!raw.includes('DB_PASSWORD'));
    const file = JSON.parse(raw);
    const [entry] = Object.values<Record<string, string>>(file.entries);
    for (const k of ['salt', 'iv', 'tag', 'ciphertext', 'savedAt']) assert.equal(typeof entry[k], 'string', k);
    assert.deepEqual(readdirSync(dirname(path)), ['hush.cache'], 'no temp file is left behind');
  });

  test('when the server answers 5xx the cache is served with a warning and its age', async () => {
    up();
    const path = join(dir, 'served.cache');
    const { client, warnings } = fallbackClient(path);
    await client.secrets.getAll('api', 'prod');
    await client.secrets.getAll('api', 'dev');
    await new Promise((r) => setTimeout(r, 30));
    down();
    const r = await client.secrets.getAll('api', 'prod');
    assert.equal(r.fromCache, true);
    assert.equal(r.secrets.DB_PASSWORD, SECRET);
    assert.ok(r.ageMs >= 30, `ageMs ${r.ageMs}`);
    assert.equal(r.etag, null);
    assert.equal((await client.secrets.getAll('api', 'dev')).secrets.DEBUG, 'true');
    assert.deepEqual({ ...(await client.secrets.getAll('api', 'prod', { only: ['PORT'] })).secrets }, { PORT: '8080' });
    assert.equal(warnings.length, 3);
    assert.equal(warnings[0].info.kind, 'fallback_served');
    assert.match(warnings[0].message, /fallback cache saved \d+s ago/);
    assert.ok(warnings.every((w) => !w.message.includes(SECRET)));
    // Non-conditional reads only: a conditional read, or fallback:false, still fails.
    await assert.rejects(client.secrets.getAll('api', 'prod', { fallback: false }), { status: 503 });
    await assert.rejects(client.secrets.getAll('api', 'prod', { ifNoneMatch: '"1-1"' }), { status: 503 });
    up();
  });

  test('errors other than unreachable (404) are thrown, not served from cache', async () => {
    up();
    const { client, warnings } = fallbackClient(join(dir, 'notfound.cache'));
    await client.secrets.getAll('api', 'prod');
    proxy.script = () => ({ status: 404, body: errorBody('env_not_found') });
    await assert.rejects(client.secrets.getAll('api', 'prod'), { name: 'NotFoundError' });
    assert.equal(warnings.length, 0);
    up();
  });

  test('a cache older than maxAgeMs is not served', async () => {
    up();
    const { client, warnings } = fallbackClient(join(dir, 'old.cache'), { fallback: { path: join(dir, 'old.cache'), maxAgeMs: 20 } });
    await client.secrets.getAll('api', 'prod');
    await new Promise((r) => setTimeout(r, 60));
    down();
    const err = await client.secrets.getAll('api', 'prod').catch((e: unknown) => e);
    assert.ok(isUnavailableError(err));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].info.kind, 'fallback_too_old');
    assert.match(warnings[0].message, /older than/);
    up();
  });

  test('a cache filtered with only cannot answer a read of the whole environment', async () => {
    up();
    const { client } = fallbackClient(join(dir, 'only.cache'));
    await client.secrets.getAll('api', 'prod', { only: ['PORT'] });
    down();
    await assert.rejects(client.secrets.getAll('api', 'prod'), { status: 503 });
    assert.deepEqual({ ...(await client.secrets.getAll('api', 'prod', { only: ['PORT'] })).secrets }, { PORT: '8080' });
    up();
  });

  test('an edited savedAt or another token cannot use the cache', async () => {
    up();
    const path = join(dir, 'tamper.cache');
    const { client } = fallbackClient(path);
    await client.secrets.getAll('api', 'prod');
    const other = (await s.api('POST', '/v1/tokens', { name: 'other', scopes: ['read:api/prod'] })).body.token as string;
    down();
    const o = fallbackClient(path, { token: other });
    await assert.rejects(o.client.secrets.getAll('api', 'prod'), { status: 503 });
    assert.equal(o.warnings[0].info.kind, 'fallback_unreadable');
    const file = JSON.parse(readFileSync(path, 'utf8'));
    for (const e of Object.values<{ savedAt: string }>(file.entries)) e.savedAt = new Date().toISOString();
    writeFileSync(path, JSON.stringify(file));
    await assert.rejects(client.secrets.getAll('api', 'prod'), { status: 503 });
    up();
  });

  test('when the token is revoked the next call gets 401 and the cache file is deleted', async () => {
    up();
    const created = (await s.api('POST', '/v1/tokens', { name: 'short-lived', scopes: ['read:api/prod'] })).body as {
      token: string;
      id: string;
    };
    const path = join(dir, 'revoked.cache');
    const { client, warnings } = fallbackClient(path, { token: created.token });
    await client.secrets.getAll('api', 'prod');
    assert.ok(existsSync(path));
    await s.api('DELETE', `/v1/tokens/${created.id}`);
    await assert.rejects(client.secrets.getAll('api', 'prod'), { name: 'AuthError', status: 401 });
    assert.ok(!existsSync(path));
    assert.equal(warnings.length, 0);
  });

  test("a 403 removes that environment's entry", async () => {
    up();
    const path = join(dir, 'forbidden.cache');
    const { client } = fallbackClient(path);
    await client.secrets.getAll('api', 'prod');
    proxy.script = () => ({ status: 403, body: errorBody('forbidden') });
    await assert.rejects(client.secrets.getAll('api', 'prod'), { name: 'ForbiddenError' });
    assert.ok(!existsSync(path));
    up();
  });

  test('when the server is stopped the cache is served with a warning and its age', async () => {
    const own = await startServer();
    const path = join(dir, 'stopped.cache');
    try {
      await own.api('POST', '/v1/projects', { name: 'api' });
      await own.api('POST', '/v1/projects/api/envs', { name: 'prod' });
      await own.api('PUT', '/v1/projects/api/envs/prod/secrets/DB_PASSWORD', { value: SECRET });
      const warnings: string[] = [];
      const client = createClient({
        addr: own.url,
        token: own.rootToken,
        retries: fast,
        fallback: { path },
        onWarning: (m) => warnings.push(m),
      });
      await client.secrets.getAll('api', 'prod');
      await own.close({ keepDir: true });
      const r = await client.secrets.getAll('api', 'prod');
      assert.equal(r.fromCache, true);
      assert.equal(r.secrets.DB_PASSWORD, SECRET);
      assert.ok(r.ageMs >= 0 && r.ageMs < 10_000);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /server unreachable \(network_error\); serving api\/prod from the fallback cache saved \d+s ago/);
      assert.ok(!warnings[0].includes(SECRET));
    } finally {
      await own.close(); // second close only removes the data dir
    }
  });
});
