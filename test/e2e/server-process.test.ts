import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runHush, spawnServer, waitExit, waitFor } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('hush init and hush server as processes', () => {
  it('init creates a private data dir, master.key (0600) and prints the root token once as JSON', async () => {
    const dir = join(tempDir(), 'data');
    const r = await runHush(['operator', 'init', '--data-dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.rootToken, /^hush_[0-9A-Za-z]{49}$/);
    assert.equal(out.masterKeyFile, join(dir, 'master.key'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(out.masterKeyFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'hush.db')).mode & 0o777, 0o600);
  });

  it('a second init on the same data dir refuses and loses nothing', async () => {
    const dir = join(tempDir(), 'data');
    assert.equal((await runHush(['operator', 'init', '--data-dir', dir, '--json'])).code, 0);
    const key = readFileSync(join(dir, 'master.key'), 'utf8');
    const db = sha(join(dir, 'hush.db'));
    const again = await runHush(['operator', 'init', '--data-dir', dir]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /^hush: .*already initialised/);
    assert.equal(again.stderr.trim().split('\n').length, 1);
    assert.equal(readFileSync(join(dir, 'master.key'), 'utf8'), key);
    assert.equal(sha(join(dir, 'hush.db')), db);
  });

  it('a bad setting is one readable line and exit 2', async () => {
    const r = await runHush(['server', '--listen', 'nowhere']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^hush: invalid --listen: must be HOST:PORT/);
  });

  it('server on an empty data dir initialises it, prints the root token once, warns about the dev key, and serves', async () => {
    const dir = join(tempDir(), 'data');
    const srv = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0']);
    try {
      assert.ok(srv.rootToken);
      assert.match(srv.stderr(), /development only/);
      const h = (await fetch(`${srv.url}/v1/sys/health`).then((r) => r.json())) as { status: string; storage: string };
      assert.equal(h.status, 'ok');
      assert.equal(h.storage, 'sqlite');
      const auth = { authorization: `Bearer ${srv.rootToken}`, 'content-type': 'application/json' };
      assert.equal((await fetch(`${srv.url}/v1/projects`, { method: 'POST', headers: auth, body: '{"name":"api"}' })).status, 201);
      assert.equal(
        (await fetch(`${srv.url}/v1/projects/api/envs`, { method: 'POST', headers: auth, body: '{"name":"prod"}' })).status,
        201,
      );
      assert.equal(
        (await fetch(`${srv.url}/v1/projects/api/envs/prod/secrets/A`, { method: 'PUT', headers: auth, body: '{"value":"1"}' })).status,
        200,
      );
      for (const f of ['hush.db', 'hush.db-wal', 'master.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    } finally {
      srv.child.kill('SIGTERM');
      await waitExit(srv.child);
    }
    const second = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0']);
    assert.equal(second.rootToken, null, 'the root token is printed only on the first start');
    second.child.kill('SIGTERM');
    await waitExit(second.child);
  });

  it('SIGTERM answers the in-flight long-poll, closes its keep-alive connection and exits 0 within 5 s', async (t) => {
    const dir = join(tempDir(), 'data');
    const srv = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0']);
    const auth = { authorization: `Bearer ${srv.rootToken}`, 'content-type': 'application/json' };
    // A keep-alive client, as a watcher (hush run --watch, the SDK) holds one.
    const agent = new http.Agent({ keepAlive: true });
    try {
      const call = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; etag: string | undefined; connection: string | undefined }>((resolve, reject) => {
          const req = http.request(`${srv.url}${path}`, { method, agent, headers: { ...auth, ...headers } }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, etag: res.headers.etag, connection: res.headers.connection }));
          });
          req.on('error', reject);
          req.end(body);
        });
      assert.equal((await call('POST', '/v1/projects', '{"name":"api"}')).status, 201);
      assert.equal((await call('POST', '/v1/projects/api/envs', '{"name":"prod"}')).status, 201);
      const { etag } = await call('GET', '/v1/projects/api/envs/prod/secrets');
      // The long-poll is in flight when SIGTERM arrives (the server logs each request as it starts).
      const logged = srv.stdout().length;
      const inflight = call('GET', '/v1/projects/api/envs/prod/secrets?wait=30', undefined, { 'if-none-match': etag! });
      await waitFor(() => srv.stdout().slice(logged).includes('secrets?wait=30'), 'the long-poll reached the server');
      const start = Date.now();
      srv.child.kill('SIGTERM');
      const answered = await inflight;
      assert.equal(answered.status, 304);
      assert.equal(answered.connection, 'close', 'a response sent during shutdown closes its connection');
      const { code } = await waitExit(srv.child, 5_000);
      const ms = Date.now() - start;
      assert.equal(code, 0);
      assert.ok(ms < 5_000, `exited ${ms} ms after SIGTERM`);
      t.diagnostic(`exited ${ms} ms after SIGTERM with a keep-alive client attached`);
    } finally {
      agent.destroy();
      srv.child.kill('SIGKILL');
    }
    for (const sig of ['SIGINT'] as const) {
      const s2 = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0']);
      s2.child.kill(sig);
      assert.equal((await waitExit(s2.child)).code, 0);
    }
  });
});
