/**
 * Listings return only what the calling token can see, and a refusal does
 * not tell a caller whether the thing it was refused exists.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, remember, seed, secretValue, type Minted } from './support.js';

const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

for (const backend of BACKENDS) {
  describe(`listings on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'auth-fail-limit': 10_000 });
      remember(s.rootToken);
      await seed(s, {
        api: { prod: { DB_URL: secretValue('l1'), API_KEY: secretValue('l2') }, preview: {}, staging: { DB_URL: secretValue('l3') } },
        'api-v2': { prod: {} },
        web: { prod: { X: secretValue('l4') } },
        billing: { prod: {} },
      });
    });
    after(async () => {
      await s?.close();
    });

    const projectsSeenBy: [string[], string[]][] = [
      [['read:api/prod'], ['api']],
      [['list:web/prod'], ['web']],
      [
        ['read:api/prod', 'write:web/prod'],
        ['api', 'web'],
      ],
      [['admin:api'], ['api']],
      [['admin:api*'], ['api', 'api-v2']],
      [['read:*/prod'], ['api', 'api-v2', 'billing', 'web']],
      [['audit'], []],
      [['backup'], []],
      [['root'], ['api', 'api-v2', 'billing', 'web']],
    ];
    for (const [scopes, want] of projectsSeenBy) {
      test(`GET /v1/projects with ${scopes.join(' + ')} lists ${want.length ? want.join(', ') : 'nothing'}`, async () => {
        const t = await mint(s, scopes);
        const r = await s.api('GET', '/v1/projects', undefined, t.token);
        assert.equal(r.status, 200);
        assert.deepEqual(names(r.body.projects), want);
      });
    }

    const envsSeenBy: [string[], string[]][] = [
      [['read:api/prod'], ['prod']],
      [
        ['list:api/staging', 'read:api/prod'],
        ['prod', 'staging'],
      ],
      [['read:api/pr*'], ['preview', 'prod']],
      [['write:*/staging'], ['staging']],
      [['admin:api'], ['preview', 'prod', 'staging']],
      [['root'], ['preview', 'prod', 'staging']],
    ];
    for (const [scopes, want] of envsSeenBy) {
      test(`GET /v1/projects/api/envs with ${scopes.join(' + ')} lists ${want.join(', ')}`, async () => {
        const t = await mint(s, scopes);
        const r = await s.api('GET', '/v1/projects/api/envs', undefined, t.token);
        assert.equal(r.status, 200);
        assert.deepEqual(names(r.body.envs), want);
      });
    }

    test('a list:api/prod token sees secret names in api/prod but no values', async () => {
      const t = await mint(s, ['list:api/prod']);
      const keys = await s.api('GET', '/v1/projects/api/envs/prod/keys', undefined, t.token);
      assert.equal(keys.status, 200);
      assert.deepEqual(keys.body.secrets.map((k: { key: string }) => k.key).sort(), ['API_KEY', 'DB_URL']);
      assert.ok(!JSON.stringify(keys.body).includes('sv-'), 'a value leaked into the names listing');
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, t.token)).status, 403);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/staging/keys', undefined, t.token)).status, 403);
    });

    test('listing the envs of a project the token has no grant on is 403 whether or not the project exists', async () => {
      const t = await mint(s, ['read:api/prod']);
      const existing = await s.api('GET', '/v1/projects/web/envs', undefined, t.token);
      const missing = await s.api('GET', '/v1/projects/wob/envs', undefined, t.token);
      assert.equal(existing.status, 403);
      assert.equal(missing.status, 403);
      assert.equal(existing.body.error.message.replace('web', 'X'), missing.body.error.message.replace('wob', 'X'));
    });

    test('reading an env the token has no grant on is 403 whether or not the env exists', async () => {
      const t = await mint(s, ['read:api/prod']);
      const existing = await s.api('GET', '/v1/projects/api/envs/staging/secrets', undefined, t.token);
      const missing = await s.api('GET', '/v1/projects/api/envs/stoging/secrets', undefined, t.token);
      const noProject = await s.api('GET', '/v1/projects/nope/envs/staging/secrets', undefined, t.token);
      for (const r of [existing, missing, noProject]) {
        assert.equal(r.status, 403);
        assert.equal(r.body.error.code, 'forbidden');
      }
      assert.equal(existing.body.error.message, 'this token lacks the grant read:api/staging');
      assert.equal(missing.body.error.message, 'this token lacks the grant read:api/stoging');
      assert.equal(noProject.body.error.message, 'this token lacks the grant read:nope/staging');
    });

    describe('GET /v1/tokens', () => {
      let parent: Minted, child: Minted, grandchild: Minted, sibling: Minted, apiDeploy: Minted, webDeploy: Minted, admin: Minted;
      before(async () => {
        parent = await mint(s, ['write:api/*'], { name: 'tree-parent' });
        child = await mint(s, ['read:api/prod'], { name: 'tree-child', parent: parent.token });
        grandchild = await mint(s, ['list:api/prod'], { name: 'tree-grandchild', parent: child.token });
        sibling = await mint(s, ['read:api/staging'], { name: 'tree-sibling', parent: parent.token });
        apiDeploy = await mint(s, ['read:api/prod'], { name: 'api-deploy' });
        webDeploy = await mint(s, ['read:web/prod'], { name: 'web-deploy' });
        admin = await mint(s, ['admin:api'], { name: 'api-admin' });
      });
      const ids = async (token: string, query = '') => {
        const r = await s.api('GET', `/v1/tokens${query}`, undefined, token);
        assert.equal(r.status, 200);
        return new Set<string>(r.body.tokens.map((t: { id: string }) => t.id));
      };

      test('a token lists itself and its descendants only', async () => {
        assert.deepEqual(await ids(child.token), new Set([child.id, grandchild.id]));
        assert.deepEqual(await ids(parent.token), new Set([parent.id, child.id, grandchild.id, sibling.id]));
        assert.deepEqual(await ids(grandchild.token), new Set([grandchild.id]));
      });

      test('an admin:api token also lists tokens whose grants all lie within api, and none outside it', async () => {
        const seen = await ids(admin.token);
        for (const t of [admin, apiDeploy, parent, child, grandchild, sibling])
          assert.ok(seen.has(t.id), `admin:api should see ${t.body.name}`);
        assert.ok(!seen.has(webDeploy.id), 'admin:api must not see a web token');
        const r = await s.api('GET', '/v1/tokens', undefined, admin.token);
        for (const t of r.body.tokens)
          assert.ok(
            t.scopes.every((sc: string) => /^(read|list|write):api\/|^admin:api$/.test(sc)),
            t.scopes.join(','),
          );
      });

      test('root lists every token', async () => {
        const seen = await ids(s.rootToken);
        for (const t of [admin, apiDeploy, webDeploy, parent, child, grandchild, sibling]) assert.ok(seen.has(t.id));
      });

      test('revoked tokens are hidden unless includeRevoked=true', async () => {
        const gone = await mint(s, ['read:api/prod'], { name: 'gone', parent: parent.token });
        assert.equal((await s.api('DELETE', `/v1/tokens/${gone.id}`, undefined, parent.token)).status, 200);
        assert.ok(!(await ids(parent.token)).has(gone.id));
        assert.ok((await ids(parent.token, '?includeRevoked=true')).has(gone.id));
      });

      test("filtering by name keeps visibility: a name outside the caller's view returns nothing", async () => {
        assert.deepEqual(await ids(child.token, '?name=tree-grandchild'), new Set([grandchild.id]));
        assert.deepEqual(await ids(child.token, '?name=web-deploy'), new Set());
        assert.deepEqual(await ids(admin.token, '?name=web-deploy'), new Set());
      });
    });
  });
}

logLeakCheck();
