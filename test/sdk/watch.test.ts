import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/cli.js';
import { capturedLogs, longPollArrived, startServer, type TestServer } from '../helpers/server.js';
import { createClient, isAuthError, watch, type HushClient, type SecretsSnapshot } from 'hush-vault-sdk';
import { errorBody, scriptServer } from './helpers.js';

let s: TestServer;
let root: HushClient;

before(async () => {
  s = await startServer();
  root = createClient({ addr: s.url, token: s.rootToken });
  await root.projects.create('api');
  await root.envs.create('api', 'prod');
  await root.secrets.set('api', 'prod', 'FLAG', 'off');
});
after(async () => {
  await s.close();
});

/**
 * A fetch that gives each request the id `tag-N`, so this watcher's requests
 * can be told from an earlier watcher's in the server's log (this process is
 * the server: an aborted long-poll can still be logged after its test ended).
 */
function tagged(tag: string): typeof fetch {
  let n = 0;
  return (url, init) => fetch(url, { ...init, headers: { ...(init?.headers as Record<string, string>), 'x-request-id': `${tag}-${n++}` } });
}

/** Resolves with the next `count` onChange calls. */
function collector() {
  const calls: { current: SecretsSnapshot; previous: SecretsSnapshot | null }[] = [];
  let waiters: (() => void)[] = [];
  return {
    calls,
    onChange: (current: SecretsSnapshot, previous: SecretsSnapshot | null) => {
      calls.push({ current, previous });
      for (const w of waiters) w();
      waiters = [];
    },
    async until(n: number, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (calls.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${calls.length} of ${n} changes within ${ms} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
  };
}

describe('watch', () => {
  test('onChange fires with the current values, then with the new values after a change', async () => {
    const c = collector();
    const errors: unknown[] = [];
    const logged = capturedLogs.length;
    const stop = watch(
      { project: 'api', env: 'prod', client: createClient({ addr: s.url, token: s.rootToken, fetch: tagged('w1') }) },
      c.onChange,
      (e) => errors.push(e),
    );
    try {
      await c.until(1);
      assert.equal(c.calls[0].current.secrets.FLAG, 'off');
      assert.equal(c.calls[0].previous, null);
      await longPollArrived(logged, 'the watcher parked in a long-poll', 'w1-');
      const changedAt = Date.now();
      await root.secrets.set('api', 'prod', 'FLAG', 'on');
      await c.until(2);
      // Generous: the bound only has to stay below waitSeconds (25 s), which a change missed by the long-poll would take.
      assert.ok(Date.now() - changedAt < 20_000, 'the parked long-poll answers the change');
      assert.equal(c.calls[1].current.secrets.FLAG, 'on');
      assert.equal(c.calls[1].previous?.secrets.FLAG, 'off');
      assert.ok(c.calls[1].current.revision > c.calls[0].current.revision);
    } finally {
      const t = Date.now();
      await stop();
      assert.ok(Date.now() - t < 20_000, 'stop aborts the in-flight long-poll (instead of waiting out its 25 s)');
    }
    assert.deepEqual(errors, []);
  });

  test('with initial:false only changes are reported', async () => {
    const c = collector();
    const logged = capturedLogs.length;
    const stop = watch(
      { project: 'api', env: 'prod', addr: s.url, token: s.rootToken, initial: false, waitSeconds: 5, fetch: tagged('w2') },
      c.onChange,
    );
    try {
      // Parked in its first long-poll: the initial values were fetched and not reported.
      await longPollArrived(logged, 'the watcher parked in a long-poll', 'w2-');
      assert.equal(c.calls.length, 0);
      await root.secrets.bulk('api', 'prod', { set: { FLAG: 'blue', OTHER: '1' } });
      await c.until(1);
      assert.deepEqual({ ...c.calls[0].current.secrets }, { FLAG: 'blue', OTHER: '1' });
    } finally {
      await stop();
    }
  });

  test('errors are reported and retried with backoff; values arrive once the server is back', async () => {
    const proxy = await scriptServer(s.url);
    proxy.script = (n) => (n < 2 ? { status: 503, body: errorBody('storage_unavailable') } : 'proxy');
    const c = collector();
    const errors: unknown[] = [];
    const stop = watch(
      { project: 'api', env: 'prod', addr: proxy.url, token: s.rootToken, retries: 0, maxBackoffMs: 50 },
      c.onChange,
      (e) => errors.push(e),
    );
    try {
      await c.until(1);
      assert.equal(errors.length, 2);
      assert.equal(c.calls[0].current.secrets.FLAG, 'blue');
    } finally {
      await stop();
      await proxy.close();
    }
  });

  test('a revoked token stops the watch after reporting the AuthError', async () => {
    const t = await root.tokens.create({ name: 'watcher', scopes: ['read:api/prod'] });
    const c = collector();
    const errors: unknown[] = [];
    const stop = watch({ project: 'api', env: 'prod', addr: s.url, token: t.token, waitSeconds: 1, intervalMs: 50 }, c.onChange, (e) =>
      errors.push(e),
    );
    await c.until(1);
    await root.tokens.revoke(t.id);
    await waitFor(() => errors.length > 0, 'the AuthError to be reported');
    assert.equal(errors.length, 1);
    assert.ok(isAuthError(errors[0]));
    await stop();
  });
});
