/**
 * The failed-authentication limit and the per-address rate limit hold
 * across servers: two real `hush server` processes on one PostgreSQL
 * database. "Another client address" is another loopback source address
 * (Linux routes all of 127/8 to lo).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import type { Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';
import { openDb } from '../../vault/store/db.js';
import { spawnServer, waitFor } from '../helpers/cli.js';
import { newMasterKey, startCluster, writeKeyFile, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { assertNoLeaks, remember } from '../helpers/leaks.js';
import { LOOPBACK_ALIASES_SKIP } from '../helpers/preconditions.js';
import { freshPgDatabase, NEEDS_PG, PG_SKIP, PG_URL, tempDir } from '../helpers/server.js';
import { rawRequest, type RawResponse } from '../tokens/support.js';
import { join } from 'node:path';

const badToken = () => remember(formatToken((n) => randomBytes(n)));
const SKIP = { skip: !PG_URL ? PG_SKIP : LOOPBACK_ALIASES_SKIP };

function retryAfter(r: RawResponse): number {
  const n = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(n) && n >= 1, `Retry-After ${r.headers['retry-after']}`);
  return n;
}

describe('the failed-authentication limit is shared by every server', SKIP, () => {
  const LIMIT = 10;
  let c: Cluster;
  let A: ClusterNode;
  let B: ClusterNode;
  before(async () => {
    c = await startCluster({ nodes: 2, args: ['--auth-fail-limit', String(LIMIT), '--auth-fail-window', '10m'] });
    [A, B] = c.nodes;
  });
  after(async () => {
    await c?.close();
  });

  it(`${LIMIT + 2} bad tokens spread over two servers: the first ${LIMIT} get 401, then both answer 429, even to a valid token`, async () => {
    const ip = '127.0.0.31';
    const statuses: string[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const node = i % 2 === 0 ? A : B;
      const r = await rawRequest(node.url, { path: '/v1/tokens/self', token: badToken(), localAddress: ip });
      statuses.push(`${node.name}${r.status}`);
      if (r.status === 429) {
        assert.equal(r.body.error.code, 'rate_limited');
        assert.ok(retryAfter(r) <= 600);
      }
    }
    const expected = Array.from({ length: LIMIT + 2 }, (_, i) => `${i % 2 === 0 ? 'A' : 'B'}${i < LIMIT ? 401 : 429}`);
    assert.deepEqual(statuses, expected);
    // Blocked means blocked: a valid token from that address gets 429 on both servers, so a hit looks like a miss.
    for (const node of [A, B]) {
      const r = await rawRequest(node.url, { path: '/v1/tokens/self', token: c.rootToken, localAddress: ip });
      assert.equal(r.status, 429, `${node.name}: ${r.text}`);
      retryAfter(r);
    }
    // Another address is not affected.
    for (const node of [A, B])
      assert.equal((await rawRequest(node.url, { path: '/v1/tokens/self', token: c.rootToken, localAddress: '127.0.0.32' })).status, 200);
  });

  it('malformed and missing tokens count too, and are refused with 429 once the address is blocked', async () => {
    const ip = '127.0.0.33';
    for (let i = 0; i < LIMIT; i++) {
      const node = i % 2 === 0 ? A : B;
      const r = await rawRequest(node.url, {
        path: '/v1/tokens/self',
        authorization: i % 3 === 0 ? undefined : 'Bearer not-a-token',
        localAddress: ip,
      });
      assert.equal(r.status, 401, `${node.name} #${i}`);
    }
    for (const node of [A, B]) {
      assert.equal(
        (await rawRequest(node.url, { path: '/v1/tokens/self', authorization: 'Bearer not-a-token', localAddress: ip })).status,
        429,
      );
      assert.equal((await rawRequest(node.url, { path: '/v1/tokens/self', localAddress: ip })).status, 429);
    }
  });

  it('a third server started later knows the block at once', async () => {
    const C = await c.addNode();
    const r = await rawRequest(C.url, { path: '/v1/tokens/self', token: c.rootToken, localAddress: '127.0.0.31' });
    assert.equal(r.status, 429);
  });
});

describe('the failed-authentication window ends on every server', SKIP, () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ nodes: 2, args: ['--auth-fail-limit', '3', '--auth-fail-window', '1s'] });
  });
  after(async () => {
    await c?.close();
  });

  it('an address blocked through A and B is let back in on both once the window has passed, and its row expires', async () => {
    const [A, B] = c.nodes;
    const ip = '127.0.0.34';
    for (const node of [A, B, A])
      assert.equal((await rawRequest(node.url, { path: '/v1/tokens/self', token: badToken(), localAddress: ip })).status, 401);
    assert.equal((await rawRequest(B.url, { path: '/v1/tokens/self', token: c.rootToken, localAddress: ip })).status, 429);
    // The window is a time: wait it out (Retry-After is at most 1 s here), then both servers let the good token in.
    await new Promise((r) => setTimeout(r, 1100));
    for (const node of [A, B])
      assert.equal((await rawRequest(node.url, { path: '/v1/tokens/self', token: c.rootToken, localAddress: ip })).status, 200);
    // The next failure (from anywhere) also deletes windows that have ended.
    assert.equal((await rawRequest(A.url, { path: '/v1/tokens/self', token: badToken(), localAddress: '127.0.0.35' })).status, 401);
    const db = openDb({ url: c.dbUrl });
    try {
      await waitFor(
        async () => (await db('auth_failures').select('ip')).map((r) => r.ip).join() === '127.0.0.35',
        'the ended window deleted, the new one kept',
      );
    } finally {
      await db.destroy();
    }
  });
});

describe('the per-address rate limit is shared by every server', SKIP, () => {
  const MAX = 20;
  const LEASE = 3;
  const NODES = 2;
  // A day-long window: the test cannot see it end (windows are aligned to the epoch; see withinOneWindow).
  const WINDOW_MS = 86_400_000;
  let c: Cluster;
  let A: ClusterNode;
  let B: ClusterNode;
  before(async () => {
    c = await startCluster({
      nodes: NODES,
      args: ['--rate-limit', String(MAX), '--rate-limit-window', '1d', '--rate-limit-lease', String(LEASE)],
    });
    [A, B] = c.nodes;
  });
  after(async () => {
    await c?.close();
  });

  /** Runs `fn` with a fresh address until one run stays inside one window (a run across midnight UTC is repeated once). */
  async function withinOneWindow(ips: string[], fn: (ip: string) => Promise<void>): Promise<void> {
    for (const ip of ips) {
      const w = Math.floor(Date.now() / WINDOW_MS);
      await fn(ip);
      if (Math.floor(Date.now() / WINDOW_MS) === w) return;
    }
    throw new Error('every run crossed a window boundary');
  }

  const ask = (node: { url: string }, ip: string) => rawRequest(node.url, { path: '/v1/openapi.json', localAddress: ip });

  it(`requests alternating between two servers: together they admit at most ${MAX}, and at least ${MAX} - (servers - 1) x (lease - 1)`, async () => {
    await withinOneWindow(['127.0.0.41', '127.0.0.42'], async (ip) => {
      const admitted = { A: 0, B: 0 };
      const refused: RawResponse[] = [];
      for (let i = 0; i < 3 * MAX; i++) {
        const node = i % 2 === 0 ? A : B;
        const r = await ask(node, ip);
        if (r.status === 200) admitted[node.name as 'A' | 'B']++;
        else refused.push(r);
      }
      const total = admitted.A + admitted.B;
      assert.ok(total <= MAX, `admitted ${total} (${JSON.stringify(admitted)}) > ${MAX}`);
      assert.ok(total >= MAX - (NODES - 1) * (LEASE - 1), `admitted only ${total}`);
      assert.ok(admitted.A > 0 && admitted.B > 0, 'both servers admitted some');
      for (const r of refused) {
        assert.equal(r.status, 429);
        assert.equal(r.body.error.code, 'rate_limited');
        assert.ok(retryAfter(r) <= 86_400);
      }
    });
  });

  it(`${3 * MAX} concurrent requests over both servers: still at most ${MAX} admitted`, async () => {
    await withinOneWindow(['127.0.0.43', '127.0.0.44'], async (ip) => {
      const rs = await Promise.all(Array.from({ length: 3 * MAX }, (_, i) => ask(i % 2 === 0 ? A : B, ip)));
      const total = rs.filter((r) => r.status === 200).length;
      assert.ok(total <= MAX, `admitted ${total} > ${MAX}`);
      assert.ok(total >= MAX - (NODES - 1) * (LEASE - 1), `admitted only ${total}`);
      assert.deepEqual([...new Set(rs.map((r) => r.status))].sort(), [200, 429]);
    });
  });

  it('an address limited through A is refused by B at once, and a third server started later refuses it too', async () => {
    await withinOneWindow(['127.0.0.45', '127.0.0.46'], async (ip) => {
      let admitted = 0;
      for (let i = 0; i < MAX + 5; i++) if ((await ask(A, ip)).status === 200) admitted++;
      assert.equal(admitted, MAX, 'one server alone admits exactly the limit');
      assert.equal((await ask(B, ip)).status, 429);
      const C = await c.addNode();
      assert.equal((await ask(C, ip)).status, 429);
    });
  });

  it('windows that have ended are deleted; the table holds the current window only', async () => {
    const db = openDb({ url: c.dbUrl });
    try {
      const now = Date.now();
      await db('rate_limits').insert({
        ip: '192.0.2.1',
        window_start: Math.floor(now / WINDOW_MS) * WINDOW_MS - 2 * WINDOW_MS,
        used: 5,
        last_grant: 5,
      });
      const server = await spawnServer([
        '--database-url',
        c.dbUrl,
        '--data-dir',
        join(tempDir(), 'd'),
        '--listen',
        '127.0.0.1:0',
        '--master-key-file',
        A.keyFile,
        '--rate-limit',
        String(MAX),
        '--rate-limit-window',
        '1d',
        '--rate-limit-lease',
        String(LEASE),
      ]);
      try {
        // The first claim of a window (on a server that has not claimed in it yet) deletes the windows before it.
        assert.equal((await ask(server, '127.0.0.47')).status, 200);
        await waitFor(async () => {
          const old = await db('rate_limits')
            .where('window_start', '<', Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS)
            .count({ n: '*' });
          return Number(old[0].n) === 0;
        }, 'the ended window deleted');
      } finally {
        await server.stop();
      }
    } finally {
      await db.destroy();
    }
  });
});

describe('a vault made before the shared limits is upgraded by the new release', NEEDS_PG, () => {
  it('the migration adds the tables to an existing PostgreSQL vault, and the limits work at once', async (t) => {
    const pg = (await freshPgDatabase())!;
    const dir = tempDir('hush-upgrade-');
    const keyFile = join(dir, 'master.key');
    writeKeyFile(keyFile, newMasterKey());
    const args = [
      '--database-url',
      pg.url,
      '--data-dir',
      join(dir, 'data'),
      '--listen',
      '127.0.0.1:0',
      '--master-key-file',
      keyFile,
      '--auth-fail-limit',
      '2',
    ];
    let db: Knex | null = null;
    try {
      const first = await spawnServer(args);
      const root = remember(first.rootToken!);
      assert.equal(
        (await rawRequest(first.url, { method: 'POST', path: '/v1/projects', token: root, body: { name: 'kept' } })).status,
        201,
      );
      await first.stop();
      // Back to the previous release's schema: its tables, and its migration list without this one.
      db = openDb({ url: pg.url });
      // Newer migrations first, then this one: the schema as the release before shared limits left it.
      await db.migrate.down({ migrationSource, name: '20261210000000_ui_sessions' });
      await db.migrate.down({ migrationSource, name: '20261209000200_webhooks' });
      await db.migrate.down({ migrationSource, name: '20261209000000_env_history' });
      await db.migrate.down({ migrationSource, name: '20261208120000_secret_policies' });
      await db.migrate.down({ migrationSource, name: '20261208000000_jwt_roles' });
      await db.migrate.down({ migrationSource, name: '20261207000100_shared_limits' });
      assert.equal(await db.schema.hasTable('auth_failures'), false);
      assert.equal(await db.schema.hasTable('rate_limits'), false);
      assert.deepEqual(
        (await db('knex_migrations').select('name')).map((r) => r.name),
        ['20261123000000_initial', '20261207000000_audit_streams'],
      );

      const next = await spawnServer(args);
      try {
        assert.equal(await db.schema.hasTable('auth_failures'), true);
        assert.equal(await db.schema.hasTable('rate_limits'), true);
        const r = await rawRequest(next.url, { path: '/v1/projects', token: root });
        assert.deepEqual(
          r.body.projects.map((p: { name: string }) => p.name),
          ['kept'],
        );
        for (let i = 0; i < 2; i++) assert.equal((await rawRequest(next.url, { path: '/v1/tokens/self', token: badToken() })).status, 401);
        assert.equal((await rawRequest(next.url, { path: '/v1/tokens/self', token: root })).status, 429);
      } finally {
        await next.stop();
      }
      assertNoLeaks(t, 'upgrade');
    } finally {
      await db?.destroy();
      await pg.drop();
    }
  });
});

describe('limits: totals', () => {
  it("no token or master key appears in any server's output", (t) => {
    assertNoLeaks(t, 'cluster limits');
  });
});
