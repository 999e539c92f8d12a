import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, isForbiddenError, isValidationError, type HushClient } from 'hush-vault-sdk';
import { startServer, type TestServer } from '../helpers/server.js';

describe('SDK: references, generate, policies and stale against a real server', () => {
  let s: TestServer;
  let client: HushClient;
  before(async () => {
    s = await startServer({ settings: { 'rotation-check-interval': '0' } });
    client = createClient({ addr: s.url, token: s.rootToken, retries: 0 });
    await client.projects.create('api');
    await client.envs.create('api', 'prod');
    await client.envs.create('api', 'dev');
  });
  after(() => s.close());

  it('getAll and get resolve references; raw: true returns the stored text', async () => {
    await client.secrets.bulk('api', 'prod', { set: { HOST: 'h', URL: 'x://${HOST}/${dev.DB}' } });
    await client.secrets.set('api', 'dev', 'DB', 'devdb');
    assert.equal((await client.secrets.getAll('api', 'prod')).secrets.URL, 'x://h/devdb');
    assert.equal((await client.secrets.getAll('api', 'prod', { raw: true })).secrets.URL, 'x://${HOST}/${dev.DB}');
    assert.equal((await client.secrets.get('api', 'prod', 'URL')).value, 'x://h/devdb');
    assert.equal((await client.secrets.get('api', 'prod', 'URL', { raw: true })).value, 'x://${HOST}/${dev.DB}');
  });

  it('a reference the token cannot read is a ForbiddenError with code reference_forbidden; a cycle a ValidationError', async () => {
    const t = await client.tokens.create({ name: 'p', scopes: ['read:api/prod'], ttl: '1h' });
    const reader = createClient({ addr: s.url, token: t.token, retries: 0 });
    await assert.rejects(
      reader.secrets.getAll('api', 'prod'),
      (e: unknown) => isForbiddenError(e) && (e as { code: string }).code === 'reference_forbidden',
    );
    await assert.rejects(
      client.secrets.set('api', 'prod', 'HOST', '${URL}'),
      (e: unknown) => isValidationError(e) && (e as { code: string }).code === 'reference_cycle',
    );
  });

  it('generate, policy, setPolicy and stale', async () => {
    const g = await client.secrets.generate('api', 'prod', 'SIGNING', {
      charset: 'base64url',
      length: 43,
      rotateEvery: '30d',
      auto: true,
      show: true,
    });
    assert.match(g.value!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(g.bits, 258);
    assert.deepEqual(g.policy, { rotateEvery: '30d', expiresAt: null, auto: true, generated: { charset: 'base64url', length: 43 } });
    const p = await client.secrets.setPolicy('api', 'prod', 'HOST', { expiresAt: '2000-01-01' });
    assert.equal(p.dueAt, '2000-01-01T00:00:00.000Z');
    assert.equal((await client.secrets.policy('api', 'prod', 'HOST')).expiresAt, '2000-01-01T00:00:00.000Z');
    const stale = await client.secrets.stale();
    assert.deepEqual(
      stale.map((x) => [x.project, x.env, x.key, x.reason]),
      [['api', 'prod', 'HOST', 'expiry']],
    );
    assert.equal((await client.health()).overdueSecrets, 1);
  });
});
