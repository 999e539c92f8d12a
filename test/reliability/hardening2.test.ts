/**
 * Hardening round 2 (issue 21): one regression test per finding of the
 * outside attack, each reproducing the attack as it was made.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sideDb } from '../helpers/db.js';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/cli.js';
import { LOOPBACK_ALIASES_SKIP, PROC_SKIP } from '../helpers/preconditions.js';
import { BACKENDS, capturedLogs, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';
import { loadConfig } from '../../vault/config.js';
import { auditEvents, call, connectionsPastCap, makeEnv, rememberSecret } from './support.js';

const openFds = () => readdirSync('/proc/self/fd').length;

/** A client that sends a request's headers and then its body one byte at a time, forever. */
function slowBody(url: string, path: string, everyMs: number): { sock: Socket; closed: Promise<string> } {
  const u = new URL(url);
  const sock = connect({ host: u.hostname, port: Number(u.port) });
  let got = '';
  sock.on('data', (d) => {
    got += d.toString('latin1');
  });
  sock.on('error', () => undefined);
  sock.on('connect', () =>
    sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{`),
  );
  const drip = setInterval(() => {
    if (sock.writable) sock.write(' ');
  }, everyMs);
  const closed = new Promise<string>((res) =>
    sock.once('close', () => {
      clearInterval(drip);
      res(got);
    }),
  );
  return { sock, closed };
}

describe('finding 1: slow bodies and hung-up clients', { skip: PROC_SKIP }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ settings: { 'request-timeout': '2s', 'log-level': 'debug', 'auth-fail-limit': '1000' } });
  });
  after(async () => {
    await s.close();
  });

  it(
    'sockets dripping a body one byte at a time are closed by the request timeout (they stayed open ' +
      'past 80 s), and no line says storage_unavailable',
    async () => {
      const from = capturedLogs.length;
      const fdsBefore = openFds();
      // Without a token (the attack), and with one on a real write route.
      const clients = [
        ...Array.from({ length: 20 }, () => slowBody(s.url, '/v1/projects', 200)),
        ...Array.from({ length: 20 }, () => slowBody(s.url, '/v1/projects/x/envs/y/secrets/Z', 200)),
      ];
      await waitFor(() => openFds() >= fdsBefore + 40, 'the slow clients to connect');
      const answers = await Promise.race([
        Promise.all(clients.map((c) => c.closed)),
        new Promise<never>((_r, rej) => setTimeout(() => rej(new Error('slow clients were still connected after 60 s')), 60_000)),
      ]);
      for (const a of answers) if (a) assert.match(a, /^HTTP\/1\.1 (408|401) /, a.slice(0, 80));
      assert.ok(answers.filter((a) => a.startsWith('HTTP/1.1 408')).length > 0, 'the timeout answered 408');
      await waitFor(() => openFds() <= fdsBefore + 2, `the server's descriptors to come back (${openFds()} open, ${fdsBefore} before)`);
      const lines = capturedLogs.slice(from);
      assert.ok(!lines.some((l) => l.includes('storage_unavailable')), 'a client hang-up is not a storage outage');
      assert.ok(!lines.some((l) => /"level":50/.test(l)), 'and no error line at all');
    },
  );

  it('a client that hangs up mid-body is logged as a hang-up at debug level, not as ' + 'storage_unavailable', async () => {
    const from = capturedLogs.length;
    const u = new URL(s.url);
    const sock = connect({ host: u.hostname, port: Number(u.port) });
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `PUT /v1/projects/x/envs/y/secrets/Z HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ` +
        `${s.rootToken}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"value":"`,
    );
    await waitFor(() => capturedLogs.slice(from).some((l) => l.includes('"incoming request"')), 'the request to arrive');
    sock.destroy();
    await waitFor(
      () => capturedLogs.slice(from).some((l) => l.includes('the client closed the connection before')),
      'the hang-up to be logged',
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${capturedLogs.slice(from).join('')}`);
    });
    const lines = capturedLogs.slice(from);
    assert.ok(
      !lines.some((l) => l.includes('storage_unavailable') || /"level":50/.test(l)),
      lines.filter((l) => /"level":50/.test(l)).join('\n'),
    );
  });
});

for (const backend of BACKENDS) {
  describe(`finding 1: a client that resets the connection right after its request, on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'log-level': 'debug', 'auth-fail-limit': '1000' });
    });
    after(async () => {
      await s.close();
    });

    it(
      'is no 500 and no error line, with a token, a bad token or none, reading or writing (the outside ' +
        'review reproduced 229 error lines)',
      async () => {
        const from = capturedLogs.length;
        const u = new URL(s.url);
        const requests = [
          `GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.rootToken}\r\n\r\n`,
          'GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hush_not_a_token\r\n\r\n',
          'GET /v1/projects HTTP/1.1\r\nHost: x\r\n\r\n',
          `PATCH /v1/projects/x/envs/y/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ` +
            `${s.rootToken}\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"set":{"A":"b"}}`,
        ];
        for (let round = 0; round < 10; round++) {
          await Promise.all(
            requests.map(async (text) => {
              const sock = connect({ host: u.hostname, port: Number(u.port) });
              sock.on('error', () => undefined);
              await new Promise((r) => sock.once('connect', r));
              sock.write(text);
              // SO_LINGER 0: the close is an RST, while the server is still handling the request.
              sock.resetAndDestroy();
            }),
          );
        }
        // The server still answers, and nothing it logged since is an error or a 500.
        assert.equal((await call(s.url, 'GET', '/v1/projects', { token: s.rootToken })).status, 200);
        await waitFor(
          () => capturedLogs.slice(from).filter((l) => l.includes('"incoming request"')).length >= 41,
          'the requests to be seen',
        ).catch(() => undefined);
        const lines = capturedLogs.slice(from);
        assert.ok(
          !lines.some((l) => /"level":50/.test(l) || /"statusCode":500/.test(l)),
          lines
            .filter((l) => /"level":50|"statusCode":500/.test(l))
            .slice(0, 3)
            .join('\n'),
        );
      },
    );
  });
}

describe('finding 1: connections per address are capped', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ settings: { 'max-connections-per-address': '30' } });
  });
  after(async () => {
    await s.close();
  });

  it('past the cap, a new connection from the same address is closed unanswered; the ones within it are served', async () => {
    assert.deepEqual(await connectionsPastCap(s.url, 40, 10), { closedUnanswered: 10, served: 30 });
    assert.ok(
      capturedLogs.some((l) => l.includes('--max-connections-per-address')),
      'the refusal is logged',
    );
  });

  it('another address is not affected', { skip: LOOPBACK_ALIASES_SKIP }, async () => {
    const u = new URL(s.url);
    const held: Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const sock = connect({ host: '127.0.0.1', port: Number(u.port) });
      sock.on('error', () => undefined);
      await new Promise((r) => sock.once('connect', r));
      held.push(sock);
    }
    const r = await new Promise<string>((res) => {
      const sock = connect({ host: '127.0.0.1', port: Number(u.port), localAddress: '127.0.0.2' });
      let got = '';
      sock.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) {
          sock.destroy();
          res(got);
        }
      });
      sock.on('error', () => res(got));
      sock.on('close', () => res(got));
      sock.write('GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    assert.match(r, /^HTTP\/1\.1 200/);
    for (const h of held) h.destroy();
  });
});

for (const backend of BACKENDS) {
  describe(`hardening round 2 on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let token: string;
    before(async () => {
      s = await startOn(backend);
      token = s.rootToken;
      rememberSecret(token);
    });
    after(async () => {
      await s.close();
    });

    const newToken = async (scopes: string[], by = token, name = `t-${Math.random().toString(36).slice(2, 8)}`) => {
      const r = await call(s.url, 'POST', '/v1/tokens', { token: by, body: { name, scopes } });
      assert.equal(r.status, 201, r.text);
      rememberSecret(r.body.token);
      return r.body as { id: string; token: string };
    };

    it(
      'finding 2: a write-only token cannot grow an env without bound: writes past the total size cap ' +
        'get 413 with the numbers, and bulk reads keep working',
      async () => {
        await makeEnv(s.url, token, 'dos', 'big');
        const w = await newToken(['write:dos/big']);
        const value = 'v'.repeat(60_000);
        const results: number[] = [];
        let refused: any = null;
        // The attack: bulk PATCHes of 60 kB values, each within the documented per-value and body limits.
        for (let i = 0; i < 12; i++) {
          const set: Record<string, string> = {};
          for (let j = 0; j < 34; j++) set[`K${i}_${j}`] = value;
          const r = await call(s.url, 'PATCH', '/v1/projects/dos/envs/big/secrets', { token: w.token, body: { set } });
          results.push(r.status);
          if (r.status === 413) refused = r.body;
        }
        assert.equal(results[0], 200, 'the first 2.04 MB write fits the 2 MiB default');
        assert.deepEqual(results.slice(1), Array(11).fill(413));
        assert.equal(refused.error.code, 'env_too_large');
        assert.match(refused.error.message, /would hold \d+ bytes .* the limit is 2097152 bytes \(--max-env-bytes\)/);
        assert.equal(refused.error.details.limit, 2097152);
        const single = await call(s.url, 'PUT', '/v1/projects/dos/envs/big/secrets/ONE_MORE', {
          token: w.token,
          body: { value: 'x'.repeat(60_000) },
        });
        assert.equal(single.status, 413, 'a single PUT is held to the same cap');
        const all = await call(s.url, 'GET', '/v1/projects/dos/envs/big/secrets', { token });
        assert.equal(all.status, 200, 'the env can still be read in bulk');
        assert.equal(Object.keys(all.body.secrets).length, 34);
        // Shrinking is always allowed, and frees room.
        const del = await call(s.url, 'PATCH', '/v1/projects/dos/envs/big/secrets', { token: w.token, body: { delete: ['K0_0', 'K0_1'] } });
        assert.equal(del.status, 200, del.text);
        assert.equal(
          (await call(s.url, 'PUT', '/v1/projects/dos/envs/big/secrets/ONE_MORE', { token: w.token, body: { value: 'x'.repeat(60_000) } }))
            .status,
          200,
        );
      },
    );

    it('finding 3: a token pasted into a URL is never stored in an audit event nor echoed in the 404', async () => {
      await makeEnv(s.url, token, 'web', 'prod');
      const pasted = await newToken(['read:web/prod']);
      const k = await call(s.url, 'GET', `/v1/projects/web/envs/prod/secrets/${pasted.token}`, { token });
      assert.equal(k.status, 404);
      assert.ok(!k.text.includes(pasted.token.slice(5, 25)), k.text);
      assert.match(k.body.error.message, /\[redacted-token\]/);
      const p = await call(s.url, 'GET', `/v1/projects/${pasted.token}/envs/prod/secrets/X`, { token });
      assert.ok(p.status >= 400 && !p.text.includes(pasted.token.slice(5, 25)), p.text);
      const put = await call(s.url, 'PUT', `/v1/projects/web/envs/prod/secrets/${pasted.token}`, { token, body: { value: 'x' } });
      assert.equal(put.status, 200);
      const events = await auditEvents(s.url, token);
      const text = JSON.stringify(events);
      assert.ok(!text.includes(pasted.token.slice(5, 25)), 'no audit event holds the token');
      assert.ok(
        events.some((e) => e.target.key === '[redacted-token]' && e.action === 'secret.read'),
        'the failed read is recorded, the name blanked',
      );
      assert.ok(events.some((e) => e.target.key === '[redacted-token]' && e.action === 'secret.write'));
      assert.ok(!capturedLogs.some((l) => l.includes(pasted.token.slice(5, 25))), 'nor does any log line');
    });

    it('finding 3 (outside review): a percent-encoded token in a URL is neither echoed nor logged', async () => {
      const pasted = await newToken(['read:web/prod']);
      const body = pasted.token.slice(5);
      for (const path of [
        `/v1/nothere/hush%5F${body}`,
        `/v1/nothere/%68ush_${body}`,
        `/v1/projects/web/envs/prod/secrets/hush%5F${body}`,
      ]) {
        const from = capturedLogs.length;
        const r = await call(s.url, 'GET', path, { token });
        assert.ok(r.status >= 400, `${path}: ${r.status}`);
        assert.ok(!r.text.includes(body.slice(0, 20)), r.text);
        assert.ok(!capturedLogs.slice(from).some((l) => l.includes(body.slice(0, 20))), `no log line holds it (${path.slice(0, 30)})`);
      }
    });

    it('finding 10: a 403 on GET /v1/projects/P/envs is audited', async () => {
      await makeEnv(s.url, token, 'web', 'stage');
      const other = await newToken(['read:api/prod']);
      const r = await call(s.url, 'GET', '/v1/projects/web/envs', { token: other.token });
      assert.equal(r.status, 403);
      const ev = (await auditEvents(s.url, token)).filter((e) => e.action === 'env.list' && e.actor.id === other.id);
      assert.equal(ev.length, 1);
      assert.equal(ev[0].outcome, 'denied');
      assert.equal(ev[0].project, 'web');
      assert.equal(ev[0].detail.status, 403);
    });

    it('finding 10: failed token create and revoke events carry the target id and the scopes asked for', async () => {
      const reader = await newToken(['read:web/prod']);
      const c = await call(s.url, 'POST', '/v1/tokens', {
        token: reader.token,
        body: { name: 'escalate', scopes: ['admin:web', 'read:web/prod'], cidrs: ['10.0.0.0/8'] },
      });
      assert.equal(c.status, 403);
      const rv = await call(s.url, 'DELETE', '/v1/tokens/tok_doesnotexist', { token: reader.token });
      assert.equal(rv.status, 404);
      const events = (await auditEvents(s.url, token)).filter((e) => e.actor.id === reader.id);
      const create = events.find((e) => e.action === 'token.create');
      assert.ok(create, JSON.stringify(events));
      assert.equal(create.outcome, 'denied');
      assert.deepEqual(create.detail.requestedScopes, ['admin:web', 'read:web/prod']);
      assert.deepEqual(create.detail.requestedCidrs, ['10.0.0.0/8']);
      assert.equal(create.target.name, 'escalate');
      const revoke = events.find((e) => e.action === 'token.revoke');
      assert.ok(revoke);
      assert.equal(revoke.outcome, 'error');
      assert.equal(revoke.target.tokenId, 'tok_doesnotexist');
    });

    it('finding 11: a child admin:P token cannot revoke its parent (or any ancestor); the parent can ' + 'revoke the child', async () => {
      const parent = await newToken(['admin:web']);
      const child = await newToken(['admin:web'], parent.token);
      const grandchild = await newToken(['read:web/prod'], child.token);
      for (const [who, target] of [
        [child, parent],
        [grandchild, parent],
        [grandchild, child],
      ] as const) {
        const r = await call(s.url, 'DELETE', `/v1/tokens/${target.id}`, { token: who.token });
        assert.ok(r.status === 403 || r.status === 404, r.text);
        if (r.status === 403) assert.match(r.body.error.message, /cannot revoke the tokens above it/);
      }
      assert.equal((await call(s.url, 'GET', '/v1/tokens/self', { token: parent.token })).status, 200, 'the parent still works');
      assert.equal((await call(s.url, 'GET', '/v1/tokens/self', { token: child.token })).status, 200, 'and so does the child');
      const ev = (await auditEvents(s.url, token)).filter((e) => e.action === 'token.revoke' && e.actor.id === child.id);
      assert.equal(ev[0].outcome, 'denied');
      assert.equal(ev[0].target.tokenId, parent.id);
      const ok = await call(s.url, 'DELETE', `/v1/tokens/${child.id}`, { token: parent.token });
      assert.equal(ok.status, 200, ok.text);
      assert.deepEqual(new Set(ok.body.revoked), new Set([child.id, grandchild.id]));
    });

    it('finding 11: a CIDR with an IPv6 zone (fe80::1%lo/64) is refused', async () => {
      for (const cidr of ['fe80::1%lo/64', 'fe80::1%lo', 'fe80::1%25eth0/64']) {
        const r = await call(s.url, 'POST', '/v1/tokens', { token, body: { name: 'zoned', scopes: ['read:web/prod'], cidrs: [cidr] } });
        assert.equal(r.status, 400, `${cidr}: ${r.text}`);
        assert.match(r.body.error.message, /IPv6 zone/);
      }
      assert.equal(
        (await call(s.url, 'POST', '/v1/tokens', { token, body: { name: 'unzoned', scopes: ['read:web/prod'], cidrs: ['fe80::/64'] } }))
          .status,
        201,
      );
    });
  });
}

describe('finding 2: an env already over the cap (made with a higher limit)', () => {
  it('is refused in bulk with env_over_limit (409) instead of being read whole; it can be read one by ' + 'one and shrunk', async () => {
    const big = await startServer({ settings: { 'max-env-bytes': '1MiB' } });
    const dir = big.dataDir;
    await makeEnv(big.url, big.rootToken, 'old', 'env');
    const set: Record<string, string> = {};
    for (let j = 0; j < 10; j++) set[`K${j}`] = 'v'.repeat(20_000);
    assert.equal((await call(big.url, 'PATCH', '/v1/projects/old/envs/env/secrets', { token: big.rootToken, body: { set } })).status, 200);
    const root = big.rootToken;
    await big.close({ keepDir: true });
    const s = await startServer({ dataDir: dir, settings: { 'max-env-bytes': '64KiB' } });
    try {
      const r = await call(s.url, 'GET', '/v1/projects/old/envs/env/secrets', { token: root });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'env_over_limit');
      assert.match(r.body.error.message, /holds 200020 bytes of names and values, over the limit of 65536 bytes \(--max-env-bytes\)/);
      assert.equal((await call(s.url, 'GET', '/v1/projects/old/envs/env/secrets/K1', { token: root })).status, 200);
      const grow = await call(s.url, 'PUT', '/v1/projects/old/envs/env/secrets/K11', { token: root, body: { value: 'x' } });
      assert.equal(grow.status, 413, 'no growth while over the cap');
      const shrink = await call(s.url, 'PATCH', '/v1/projects/old/envs/env/secrets', {
        token: root,
        body: { delete: ['K0', 'K1', 'K2', 'K3', 'K4', 'K5', 'K6'] },
      });
      assert.equal(shrink.status, 200, shrink.text);
      assert.equal((await call(s.url, 'GET', '/v1/projects/old/envs/env/secrets', { token: root })).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('finding 11: --trust-proxy refuses an IPv6 zone', () => {
  it('fe80::1%lo/64 is a config error naming the entry', () => {
    assert.throws(() => loadConfig({ 'trust-proxy': '10.0.0.0/8,fe80::1%lo/64' }, {}), /invalid --trust-proxy: entry 2 .*IPv6 zone/);
  });
});

describe('finding 7: deleted data does not stay in the write-ahead log (SQLite)', () => {
  it('after DELETE /v1/projects/P the WAL is truncated and neither file holds the deleted ciphertext', async () => {
    const s = await startServer();
    try {
      await makeEnv(s.url, s.rootToken, 'ephemeral', 'prod');
      assert.equal(
        (
          await call(s.url, 'PUT', '/v1/projects/ephemeral/envs/prod/secrets/GONE', {
            token: s.rootToken,
            body: { value: 'x'.repeat(200) },
          })
        ).status,
        200,
      );
      const side = sideDb(s);
      const rows: { ciphertext: Buffer }[] = await side('secret_versions').select('ciphertext').whereNotNull('ciphertext');
      await side.destroy();
      const cts = rows.map((r) => Buffer.from(r.ciphertext));
      assert.ok(cts.length >= 1);
      const db = join(s.dataDir, 'hush.db');
      const holds = (file: string) => {
        try {
          const b = readFileSync(file);
          return cts.some((c) => b.includes(c.subarray(0, 64)));
        } catch {
          return false;
        }
      };
      assert.ok(holds(db) || holds(`${db}-wal`), 'the ciphertext is on disk before the delete (the check can fail)');
      const r = await call(s.url, 'DELETE', '/v1/projects/ephemeral', { token: s.rootToken });
      assert.equal(r.status, 200, r.text);
      assert.equal(statSync(`${db}-wal`).size, 0, 'the WAL was checkpointed and truncated before the delete was answered');
      assert.equal(holds(`${db}-wal`), false);
      assert.equal(holds(db), false, 'secure_delete zeroed the deleted rows in hush.db');
    } finally {
      await s.close();
    }
  });
});
