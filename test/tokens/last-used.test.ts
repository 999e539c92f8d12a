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
    after(async () => {
      await s?.close();
    });

    // The update is written off the request path: poll until it lands (the deadline is only reached by a failing test).
    async function lastUsed(id: string, until: (v: string | null) => boolean = () => true): Promise<string | null> {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await s.api('GET', `/v1/tokens?includeRevoked=true`);
        const v = r.body.tokens.find((t: { id: string }) => t.id === id).lastUsedAt as string | null;
        if (until(v) || Date.now() > deadline) return v;
        await new Promise((res) => setTimeout(res, 25));
      }
    }

    /**
     * A barrier instead of a sleep: a fresh token used after the request under
     * test; once its last_used_at has landed, an update the earlier request
     * queued has landed too.
     */
    async function settled(): Promise<void> {
      const marker = await mint(s, ['read:none/none']);
      await s.api('GET', '/v1/tokens/self', undefined, marker.token);
      assert.ok(await lastUsed(marker.id, (v) => v !== null), "the marker token's last_used_at never landed");
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
      assert.equal((await s.api('GET', '/v1/projects', undefined, t.token)).status, 200);
      await settled();
      assert.equal(await lastUsed(t.id), first);
    });

    test('a failed use (wrong CIDR) does not touch last_used_at', async () => {
      const t = await mint(s, ['root'], { cidrs: ['10.0.0.0/8'] });
      assert.equal((await s.api('GET', '/v1/projects', undefined, t.token)).status, 401);
      await settled();
      assert.equal(await lastUsed(t.id), null);
    });
  });
}

logLeakCheck();
