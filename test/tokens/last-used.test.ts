import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { logLeakCheck, mint, remember } from './support.js';

for (const backend of BACKENDS) {
  describe(`last_used_at on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend);
      remember(s.rootToken);
    });
    after(async () => { await s?.close(); });

    // The update is written off the request path; give it a moment to land.
    async function lastUsed(id: string, until: (v: string | null) => boolean = () => true): Promise<string | null> {
      const deadline = Date.now() + 3000;
      for (;;) {
        const r = await s.api('GET', `/v1/tokens?includeRevoked=true`);
        const v = r.body.tokens.find((t: { id: string }) => t.id === id).lastUsedAt as string | null;
        if (until(v) || Date.now() > deadline) return v;
        await new Promise((res) => setTimeout(res, 25));
      }
    }

    test('a new token has no last_used_at', async () => {
      const t = await mint(s, ['root']);
      assert.equal(t.body.lastUsedAt, null);
      assert.equal(await lastUsed(t.id), null);
    });

    test('last_used_at is set by the first use and not rewritten by an immediate second use', async () => {
      const t = await mint(s, ['root']);
      const before = Date.now();
      assert.equal((await s.api('GET', '/v1/projects', undefined, t.token)).status, 200);
      const first = await lastUsed(t.id, (v) => v !== null);
      assert.ok(first, 'last_used_at was not set after the first use');
      assert.ok(Date.parse(first) >= before - 1000 && Date.parse(first) <= Date.now(), first);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal((await s.api('GET', '/v1/projects', undefined, t.token)).status, 200);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await lastUsed(t.id), first);
    });

    test('a failed use (wrong CIDR) does not touch last_used_at', async () => {
      const t = await mint(s, ['root'], { cidrs: ['10.0.0.0/8'] });
      assert.equal((await s.api('GET', '/v1/projects', undefined, t.token)).status, 401);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await lastUsed(t.id), null);
    });
  });
}

logLeakCheck();
