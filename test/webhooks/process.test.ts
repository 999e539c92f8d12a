/**
 * Webhook delivery across process death, receiver outages and several
 * nodes, with real `hush server` processes: at least once, and once per
 * event when nothing fails. Also the SSRF guard at delivery time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { spawnServer, waitFor } from '../helpers/cli.js';
import { startCluster } from '../helpers/cluster.js';
import { apiFor, closedPort } from '../helpers/http.js';
import { remember, secretValue } from '../helpers/leaks.js';
import { seed } from '../helpers/seed.js';
import { NEEDS_PG, tempDir } from '../helpers/server.js';
import { startReceiver } from './receiver.js';

const ALLOW = ['--allow-private-webhooks', '--webhook-max-backoff', '2s'];

describe('webhook delivery with real server processes', { concurrency: true }, () => {
  test('kill -9 while a delivery is in flight: the restarted server delivers it again', async () => {
    const dir = tempDir('hush-wh-kill-');
    const rx = await startReceiver({ behaviour: 'hang' });
    let node = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', ...ALLOW]);
    try {
      const root = remember(node.rootToken!);
      const api = apiFor(node.url, root);
      await seed(api, { api: { prod: {} } });
      const hook = await api('POST', '/v1/webhooks', { url: `${rx.url}/k`, events: ['secret.changed'], project: 'api' });
      rx.secret = remember(hook.body.secret);
      assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/K', { value: secretValue('kill') })).status, 200);
      await waitFor(() => rx.received.length === 1, 'the delivery to reach the receiver (which does not answer)');
      const eventId = rx.received[0].json.id;
      await node.kill9();
      for (const h of rx.hanging.splice(0)) h.destroy();
      rx.behaviour = 'ok';
      const url = node.url;
      node = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', url.replace('http://', ''), ...ALLOW]);
      // The dead server's lease runs out (15 s), then the row is claimed again.
      await waitFor(() => rx.received.length === 2, 'the delivery again after the restart', 40_000);
      assert.equal(rx.received[1].json.id, eventId, 'the same event');
      assert.equal(rx.received[1].signed, true);
      await waitFor(
        async () => (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0].status === 'delivered',
        'the log to say delivered',
      );
    } finally {
      await node.stop();
      await rx.close();
    }
  });

  test('a receiver that is down for a minute gets the event after it comes back', async () => {
    const dir = tempDir('hush-wh-down-');
    const port = await closedPort();
    const node = await spawnServer([
      '--data-dir',
      join(dir, 'data'),
      '--listen',
      '127.0.0.1:0',
      '--allow-private-webhooks',
      '--webhook-max-backoff',
      '10s',
    ]);
    let rx = null as Awaited<ReturnType<typeof startReceiver>> | null;
    try {
      const api = apiFor(node.url, remember(node.rootToken!));
      await seed(api, { api: { prod: {} } });
      const hook = await api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/down`, events: ['secret.changed'], project: 'api' });
      const secret = remember(hook.body.secret);
      assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/LATE', { value: secretValue('late') })).status, 200);
      const started = Date.now();
      await waitFor(
        async () => (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0]?.attempts >= 2,
        'two refused attempts',
      );
      const d = (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0];
      assert.equal(d.status, 'pending');
      assert.match(d.lastError, /ECONNREFUSED/);
      // Down for a minute in all.
      await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - started))));
      rx = await startReceiver({ port, secret });
      await waitFor(() => rx!.received.length >= 1, 'the event after the receiver came back', 30_000);
      assert.equal(rx.received[0].json.data.keys[0], 'LATE');
      assert.equal(rx.received[0].signed, true);
      assert.ok(Number(rx.received[0].headers['hush-delivery-attempt']) >= 3);
    } finally {
      await node.stop();
      await rx?.close();
    }
  });

  test('SSRF guard: without --allow-private-webhooks, private targets are refused at creation and at delivery', async () => {
    const dir = tempDir('hush-wh-ssrf-');
    const rx = await startReceiver();
    let node = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', ...ALLOW]);
    try {
      const root = remember(node.rootToken!);
      let api = apiFor(node.url, root);
      await seed(api, { api: { prod: {} } });
      // Made while private targets were allowed: a name that resolves to loopback.
      const hook = await api('POST', '/v1/webhooks', { url: `https://localhost:${rx.port}/x`, events: ['secret.changed'], project: 'api' });
      assert.equal(hook.status, 201, hook.text);
      remember(hook.body.secret);
      await node.stop();
      node = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
      api = apiFor(node.url, root);
      for (const url of [
        'http://hooks.example.com/x',
        'https://127.0.0.1/x',
        'https://10.1.2.3/x',
        'https://169.254.169.254/latest',
        'https://[::1]/x',
        'https://[::ffff:127.0.0.1]/x',
        'https://localhost/x',
        'https://100.64.0.1/x',
      ]) {
        const r = await api('POST', '/v1/webhooks', { url, events: ['secret.changed'], project: 'api' });
        assert.equal(r.status, 400, `${url}: ${r.text}`);
        assert.match(r.body.error.message, /https|private|loopback|local/);
      }
      assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/S', { value: secretValue('ssrf') })).status, 200);
      await waitFor(
        async () => (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0]?.attempts >= 1,
        'a refused attempt',
      );
      const d = (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0];
      assert.equal(d.status, 'pending');
      assert.match(d.lastError, /localhost resolves to a loopback address/);
      assert.equal(rx.received.length, 0, 'nothing reached the loopback receiver');
    } finally {
      await node.stop();
      await rx.close();
    }
  });

  test('the Python receiver of docs/webhooks.md checks a real delivery', async (t) => {
    try {
      execFileSync('python3', ['-c', 'import hmac, hashlib, http.server'], { stdio: 'ignore' });
    } catch {
      t.skip('python3 is not installed');
      return;
    }
    const doc = readFileSync(new URL('../../../docs/webhooks.md', import.meta.url), 'utf8');
    const py = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(py, 'docs/webhooks.md has a python block');
    const dir = tempDir('hush-wh-py-');
    const port = await closedPort();
    const script = join(dir, 'receiver.py');
    const out = join(dir, 'out.txt');
    const node = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', ...ALLOW]);
    const { spawn } = await import('node:child_process');
    let child: ReturnType<typeof spawn> | null = null;
    try {
      const api = apiFor(node.url, remember(node.rootToken!));
      await seed(api, { api: { prod: {} } });
      const hook = await api('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/py`, events: ['secret.changed'], project: 'api' });
      const secret = remember(hook.body.secret);
      // The documented function, used by a small http.server that records what it accepted.
      writeFileSync(
        script,
        `${py}\n
import http.server, sys, json
SECRET = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        ok = verify(SECRET, self.headers.get('Hush-Signature', ''), body)
        with open(sys.argv[3], 'a') as f:
            f.write(json.dumps({'ok': ok, 'type': json.loads(body)['type']}) + '\\n')
        self.send_response(200 if ok else 400)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[2])), H).serve_forever()
`,
      );
      child = spawn('python3', [script, secret, String(port), out], { stdio: 'ignore' });
      await waitFor(async () => {
        try {
          await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' });
          return true;
        } catch {
          return false;
        }
      }, 'the python receiver to listen');
      assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/PY', { value: secretValue('py') })).status, 200);
      await waitFor(() => {
        try {
          return readFileSync(out, 'utf8').includes('secret.changed');
        } catch {
          return false;
        }
      }, 'the python receiver to accept the delivery');
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8').trim().split('\n')[0]), { ok: true, type: 'secret.changed' });
      // The receiver answered; the outcome is recorded just after.
      await waitFor(
        async () => (await api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries`)).body.deliveries[0]?.status === 'delivered',
        'the delivery log to say delivered',
      );
      // And it refuses a delivery signed with another secret: the same body, a forged header.
      const r = await fetch(`http://127.0.0.1:${port}/py`, {
        method: 'POST',
        headers: { 'hush-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`, 'content-type': 'application/json' },
        body: '{"type":"secret.changed"}',
      });
      assert.equal(r.status, 400);
    } finally {
      child?.kill();
      await node.stop();
    }
  });

  test('two nodes on one PostgreSQL: every event is delivered once', NEEDS_PG, async () => {
    const cluster = await startCluster({ nodes: 2, args: ALLOW });
    const rx = await startReceiver();
    try {
      const [a, b] = cluster.nodes;
      await seed(a.api, { api: { prod: {} } });
      const hook = await a.api('POST', '/v1/webhooks', { url: `${rx.url}/two`, events: ['secret.changed'], project: 'api' });
      rx.secret = remember(hook.body.secret);
      const N = 40;
      const writes = Array.from({ length: N }, (_, i) =>
        (i % 2 ? a : b).api('PUT', `/v1/projects/api/envs/prod/secrets/K${i}`, { value: secretValue(`n${i}`) }),
      );
      for (const r of await Promise.all(writes)) assert.equal(r.status, 200, r.text);
      await waitFor(() => new Set(rx.received.map((x) => x.json.id)).size === N, `${N} distinct events`);
      // A row leaves pending only when an attempt is recorded, after its request ended: no send is still in flight.
      await waitFor(
        async () => (await a.api('GET', `/v1/webhooks/${hook.body.webhook.id}/deliveries?status=pending`)).body.deliveries.length === 0,
        'no delivery pending',
      );
      const ids = rx.received.map((x) => x.json.id);
      assert.equal(ids.length, N, `each event once (got ${ids.length} deliveries for ${new Set(ids).size} events)`);
      assert.ok(rx.received.every((x) => x.signed));
      const keys = rx.received.map((x) => x.json.data.keys[0]).sort();
      assert.deepEqual(keys, Array.from({ length: N }, (_, i) => `K${i}`).sort());
    } finally {
      await rx.close();
      await cluster.close();
    }
  });
});
