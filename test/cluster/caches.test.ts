/**
 * What one server caches must not outlive a change made through another:
 * two real `hush server` processes (A and B) on one PostgreSQL database.
 * Every check reads through B right after the call to A returned, with no
 * sleep and no retry: there is no bound to wait out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { assertNoLeaks, remember, secretValue } from '../helpers/leaks.js';
import { NEEDS_PG } from '../helpers/server.js';

const SECRETS = '/v1/projects/api/envs/prod/secrets';

describe('caches across two server processes on one PostgreSQL database', NEEDS_PG, () => {
  let c: Cluster;
  let A: ClusterNode;
  let B: ClusterNode;

  async function mint(
    on: ClusterNode,
    scopes: string[],
    opts: { ttl?: string; parent?: string } = {},
  ): Promise<{ token: string; id: string; expiresAt: string }> {
    const r = await on.api(
      'POST',
      '/v1/tokens',
      { name: `t-${scopes.join('-')}`, scopes, ...(opts.ttl ? { ttl: opts.ttl } : {}) },
      opts.parent,
    );
    assert.equal(r.status, 201, r.text);
    return { token: remember(r.body.token), id: r.body.id, expiresAt: r.body.expiresAt };
  }

  before(async () => {
    c = await startCluster({ nodes: 2, args: ['--rate-limit', '10000000', '--auth-fail-limit', '1000000'] });
    [A, B] = c.nodes;
    assert.equal((await A.api('POST', '/v1/projects', { name: 'api' })).status, 201);
    for (const e of ['prod', 'dev']) assert.equal((await A.api('POST', '/v1/projects/api/envs', { name: e })).status, 201);
  });
  after(async () => {
    await c?.close();
  });

  it('a token revoked through A is refused by B as soon as the revoke call returns', async () => {
    const t = await mint(A, ['read:api/prod']);
    // B has used (and, were it caching, cached) the token before the revocation.
    for (let i = 0; i < 3; i++) assert.equal((await B.api('GET', SECRETS, undefined, t.token)).status, 200);
    assert.equal((await A.api('DELETE', `/v1/tokens/${t.id}`)).status, 200);
    const r = await B.api('GET', SECRETS, undefined, t.token);
    assert.equal(r.status, 401, r.text);
    assert.equal(r.body.error.code, 'unauthorized');
    assert.equal((await A.api('GET', SECRETS, undefined, t.token)).status, 401);
  });

  it('revoking a parent through A refuses its child on B at once', async () => {
    const parent = await mint(A, ['read:api/*']);
    const child = await mint(A, ['read:api/prod'], { parent: parent.token });
    assert.equal((await B.api('GET', SECRETS, undefined, child.token)).status, 200);
    assert.equal((await A.api('DELETE', `/v1/tokens/${parent.id}`)).status, 200);
    assert.equal((await B.api('GET', SECRETS, undefined, child.token)).status, 401);
  });

  it('a token revoked through B is refused by A at once (either direction)', async () => {
    const t = await mint(B, ['read:api/prod']);
    assert.equal((await A.api('GET', SECRETS, undefined, t.token)).status, 200);
    assert.equal((await B.api('DELETE', `/v1/tokens/${t.id}`)).status, 200);
    assert.equal((await A.api('GET', SECRETS, undefined, t.token)).status, 401);
  });

  it('a secret written through A is read with its new value from B, which had cached the old one', async () => {
    const v1 = secretValue('-v1');
    const v2 = secretValue('-v2');
    assert.equal((await A.api('PUT', `${SECRETS}/DB_URL`, { value: v1 })).status, 200);
    // Twice: the second bulk read is served from B's value cache.
    for (let i = 0; i < 2; i++) {
      const r = await B.api('GET', SECRETS);
      assert.equal(r.status, 200);
      assert.equal(r.body.secrets.DB_URL, v1);
    }
    const rev = (await B.api('GET', SECRETS)).body.revision;
    const w = await A.api('PUT', `${SECRETS}/DB_URL`, { value: v2 });
    assert.equal(w.status, 200);
    const r = await B.api('GET', SECRETS);
    assert.equal(r.body.secrets.DB_URL, v2);
    assert.equal(r.body.revision, w.body.revision);
    assert.ok(r.body.revision > rev);
    assert.equal((await B.api('GET', `${SECRETS}/DB_URL`)).body.value, v2);
  });

  it('a secret deleted through A is gone on B, and a bulk change through B is seen by A', async () => {
    const v = secretValue('-bulk');
    assert.equal((await A.api('PUT', `${SECRETS}/GONE`, { value: secretValue('-gone') })).status, 200);
    assert.ok('GONE' in (await B.api('GET', SECRETS)).body.secrets);
    assert.equal((await A.api('DELETE', `${SECRETS}/GONE`)).status, 200);
    assert.ok(!('GONE' in (await B.api('GET', SECRETS)).body.secrets));
    assert.equal((await B.api('GET', `${SECRETS}/GONE`)).status, 404);

    assert.ok((await A.api('GET', SECRETS)).status === 200); // A caches the env now
    assert.equal((await B.api('PATCH', SECRETS, { set: { BULK: v } })).status, 200);
    assert.equal((await A.api('GET', SECRETS)).body.secrets.BULK, v);
  });

  it('a token made through A works on B at once with exactly its scopes', async () => {
    const t = await mint(A, ['read:api/prod']);
    assert.equal((await B.api('GET', SECRETS, undefined, t.token)).status, 200);
    const other = await B.api('GET', '/v1/projects/api/envs/dev/secrets', undefined, t.token);
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, 'forbidden');
    assert.equal((await B.api('PUT', `${SECRETS}/X`, { value: secretValue() }, t.token)).status, 403);
    const self = await B.api('GET', '/v1/tokens/self', undefined, t.token);
    assert.deepEqual(self.body.scopes, ['read:api/prod']);
  });

  it('a token that expires is refused by every node once its expiry passes', async () => {
    const t = await mint(A, ['read:api/prod'], { ttl: '1s' });
    assert.equal((await B.api('GET', SECRETS, undefined, t.token)).status, 200);
    // Expiry is a time, compared with each node's clock on every request: wait it out, then ask both.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(t.expiresAt) - Date.now()) + 50));
    assert.equal((await B.api('GET', SECRETS, undefined, t.token)).status, 401);
    assert.equal((await A.api('GET', SECRETS, undefined, t.token)).status, 401);
  });

  it("no token, secret value or master key appears in either server's output", async (t) => {
    for (const n of c.nodes) await n.stop();
    assertNoLeaks(t, 'cluster caches');
  });
});
