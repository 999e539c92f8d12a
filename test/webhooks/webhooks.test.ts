/**
 * Webhooks on a real server, per storage engine: signed deliveries to a real
 * receiver, who may manage which webhook, bad input, the SSRF guard, retries
 * and redirects, and the security alerts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sideDb } from '../helpers/db.js';
import { waitFor } from '../helpers/cli.js';
import { remember, secretValue } from '../helpers/leaks.js';
import { seed } from '../helpers/seed.js';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';
import { startReceiver, verifySignature, type Receiver } from './receiver.js';

async function mint(s: TestServer, scopes: string[], name = 'w'): Promise<string> {
  const r = await s.api('POST', '/v1/tokens', { name, scopes, ttl: '1h' });
  assert.equal(r.status, 201, r.text);
  return remember(r.body.token);
}

async function createHook(s: TestServer, body: Record<string, unknown>, token?: string) {
  const r = await s.api('POST', '/v1/webhooks', body, token);
  assert.equal(r.status, 201, r.text);
  return { id: r.body.webhook.id as string, secret: remember(r.body.secret as string) };
}

const ofType = (r: Receiver, type: string) => r.received.filter((x) => x.json?.type === type);

for (const backend of BACKENDS) {
  describe(`webhooks on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let rx: Receiver;
    let writer: string;
    const value = secretValue('webhook');

    before(async () => {
      s = await startOn(backend, {
        'allow-private-webhooks': 'true',
        'webhook-max-backoff': '1s',
        'auth-fail-limit': '5',
        'alert-auth-fail-burst': '5',
      });
      await seed(s.api, { api: { prod: {}, staging: {} }, web: { prod: {} } });
      writer = await mint(s, ['write:api/*', 'write:web/*'], 'writer');
      rx = await startReceiver();
    });
    after(async () => {
      await rx?.close();
      await s?.close();
    });

    test('a change is delivered once, signed, naming project, env and keys and never the value', async () => {
      const hook = await createHook(s, { url: `${rx.url}/all`, events: ['secret.changed', 'token.created', 'token.revoked'] });
      assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
      rx.secret = hook.secret;
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/DB_PASSWORD', { value }, writer)).status, 200);
      assert.equal((await s.api('PATCH', '/v1/projects/api/envs/staging/secrets', { set: { A: value, B: value } }, writer)).status, 200);
      await waitFor(() => ofType(rx, 'secret.changed').length >= 2, 'two secret.changed deliveries');
      const [put, bulk] = ofType(rx, 'secret.changed').sort((a, b) => a.json.auditSeq - b.json.auditSeq);
      assert.equal(put.signed, true, 'the signature checks out with the secret shown at creation');
      assert.deepEqual([put.json.project, put.json.env, put.json.data.keys], ['api', 'prod', ['DB_PASSWORD']]);
      assert.deepEqual([bulk.json.env, bulk.json.data.keys], ['staging', ['A', 'B']]);
      assert.equal(put.headers['hush-event-id'], put.json.id);
      assert.equal(put.headers['hush-event-type'], 'secret.changed');
      assert.equal(put.headers['content-type'], 'application/json');
      for (const r of rx.received) assert.ok(!r.body.includes(value), 'no value in any payload');
      // A signature over another body, or with another secret, does not check out.
      assert.equal(verifySignature(hook.secret, put.headers['hush-signature'] as string, bulk.body), false);
      assert.equal(verifySignature('whsec_other', put.headers['hush-signature'] as string, put.body), false);

      const tok = await s.api('POST', '/v1/tokens', { name: 'ci-deploy', scopes: ['read:api/prod'], ttl: '1h' });
      remember(tok.body.token);
      assert.equal((await s.api('DELETE', `/v1/tokens/${tok.body.id}`)).status, 200);
      await waitFor(() => ofType(rx, 'token.revoked').length === 1, 'token.revoked');
      const created = ofType(rx, 'token.created').find((x) => x.json.data.tokenId === tok.body.id)!;
      assert.deepEqual([created.json.data.name, created.json.data.scopes], ['ci-deploy', ['read:api/prod']]);
      assert.ok(!rx.received.some((x) => x.body.includes(tok.body.token)), 'no token string in any payload');
      const log = await s.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
      assert.equal(log.status, 200);
      assert.equal(log.body.deliveries.length, 4, 'two secret.changed, token.created and token.revoked');
      for (const d of log.body.deliveries) assert.deepEqual([d.status, d.lastStatus, d.attempts], ['delivered', 200, 1]);
      // Each event once.
      const ids = rx.received.filter((x) => x.path === '/all').map((x) => x.json.id);
      assert.equal(new Set(ids).size, ids.length);
      assert.equal((await s.api('DELETE', `/v1/webhooks/${hook.id}`)).status, 200);
    });

    test('admin of a project manages its webhooks and gets only its events; vault-wide ones need root', async () => {
      const admin = await mint(s, ['admin:api'], 'api-admin');
      const reader = await mint(s, ['read:api/prod'], 'reader');
      const mine = await startReceiver();
      try {
        const hook = await createHook(s, { url: `${mine.url}/api`, events: ['secret.changed'], project: 'api' }, admin);
        mine.secret = hook.secret;
        const forbidden = [
          [{ url: mine.url, events: ['secret.changed'], project: 'web' }, admin, 403, 'admin:web'],
          [{ url: mine.url, events: ['secret.changed'] }, admin, 403, 'root'],
          [{ url: mine.url, events: ['secret.changed'], project: 'api' }, reader, 403, 'admin:api'],
        ] as const;
        for (const [body, tok, status, names] of forbidden) {
          const r = await s.api('POST', '/v1/webhooks', body, tok);
          assert.equal(r.status, status, r.text);
          assert.match(r.body.error.message, new RegExp(names));
        }
        assert.equal((await s.api('GET', `/v1/webhooks/${hook.id}`, undefined, reader)).status, 404, 'invisible is not found');
        assert.equal((await s.api('DELETE', `/v1/webhooks/${hook.id}`, undefined, reader)).status, 404);
        assert.deepEqual((await s.api('GET', '/v1/webhooks', undefined, reader)).body.webhooks, []);
        assert.deepEqual(
          (await s.api('GET', '/v1/webhooks', undefined, admin)).body.webhooks.map((w: { id: string }) => w.id),
          [hook.id],
        );
        assert.equal((await s.api('PUT', '/v1/projects/web/envs/prod/secrets/OTHER', { value }, writer)).status, 200);
        assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/MINE', { value }, writer)).status, 200);
        await waitFor(() => mine.received.length >= 1, 'the api event');
        // The outbox is written in the transaction of the event: the web write queued nothing for this webhook.
        const log = (await s.api('GET', `/v1/webhooks/${hook.id}/deliveries`, undefined, admin)).body.deliveries;
        assert.deepEqual(
          log.map((d: { eventType: string }) => d.eventType),
          ['secret.changed'],
        );
        assert.deepEqual(
          mine.received.map((x) => [x.json.project, x.json.data.keys[0], x.signed]),
          [['api', 'MINE', true]],
        );
        const vaultWide = await s.api('POST', '/v1/webhooks', { url: mine.url, events: ['token.created'], project: 'api' }, admin);
        assert.equal(vaultWide.status, 400);
        assert.match(vaultWide.body.error.message, /whole vault/);
      } finally {
        await mine.close();
      }
    });

    test('bad input is refused with a clear 400, and nothing is written', async () => {
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ url: 'not a url', events: ['secret.changed'] }, /valid absolute URL/],
        [{ url: 'ftp://hooks.example.com/x', events: ['secret.changed'] }, /https/],
        [{ url: 'https://user:pw@hooks.example.com/x', events: ['secret.changed'] }, /user name or password/],
        [{ url: 'https://hooks.example.com/x#frag', events: ['secret.changed'] }, /fragment/],
        [{ url: 'https://hooks.example.com/x', events: ['nope'] }, /unknown event type "nope"/],
        [{ url: 'https://hooks.example.com/x', events: ['webhook.test'] }, /unknown event type/],
        [{ url: 'https://hooks.example.com/x', events: [] }, /events/],
        [{ url: 'https://hooks.example.com/x', events: ['secret.changed'], project: 'Not A Name' }, /project/],
        [{ url: `https://hooks.example.com/${'x'.repeat(2100)}`, events: ['secret.changed'] }, /2048/],
        [{ url: 'https://hooks.example.com/x', events: ['secret.changed'], extra: 1 }, /extra|additional/i],
      ];
      const before = (await s.api('GET', '/v1/webhooks')).body.webhooks.length;
      for (const [body, msg] of bad) {
        const r = await s.api('POST', '/v1/webhooks', body);
        assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
        assert.equal(r.body.error.code, 'invalid_request');
        assert.match(r.body.error.message, msg);
      }
      for (const path of ['/v1/webhooks/wh_nope', '/v1/webhooks/wh_0000000000000000', '/v1/webhooks/wh_0000000000000000/deliveries']) {
        const r = await s.api('GET', path);
        assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
        assert.ok(r.body.error.code);
      }
      assert.equal((await s.api('GET', '/v1/webhooks')).body.webhooks.length, before);
    });

    test('a failing receiver is retried until it answers 2xx; a redirect is not followed', async () => {
      const flaky = await startReceiver({ behaviour: 'fail' });
      const target = await startReceiver();
      try {
        const hook = await createHook(s, { url: `${flaky.url}/flaky`, events: ['secret.changed'], project: 'api' });
        flaky.secret = hook.secret;
        assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/RETRY', { value }, writer)).status, 200);
        await waitFor(() => flaky.received.length >= 2, 'two failed attempts');
        flaky.behaviour = 'ok';
        await waitFor(
          async () => (await s.api('GET', `/v1/webhooks/${hook.id}/deliveries?status=delivered`)).body.deliveries.length === 1,
          'the delivery after the receiver recovered',
          30_000,
        );
        const attempts = flaky.received.map((x) => x.headers['hush-delivery-attempt']);
        assert.deepEqual(attempts.slice(0, 2), ['1', '2']);
        assert.equal(new Set(flaky.received.map((x) => x.json.id)).size, 1, 'every attempt carries the same event id');
        assert.ok(
          flaky.received.every((x) => x.signed),
          'every attempt is signed',
        );

        // A 302 counts as a failure and its Location is never requested.
        const redirecting = await startReceiver({ behaviour: 'redirect' });
        try {
          const h2 = await createHook(s, { url: `${redirecting.url}/r`, events: ['secret.changed'], project: 'api' });
          assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/REDIR', { value }, writer)).status, 200);
          await waitFor(() => redirecting.received.length >= 2, 'two attempts at the redirecting receiver');
          assert.ok(
            redirecting.received.every((x) => x.path === '/r'),
            'the redirect target was never requested',
          );
          const d = (await s.api('GET', `/v1/webhooks/${h2.id}/deliveries`)).body.deliveries[0];
          assert.equal(d.status, 'pending');
          assert.equal(d.lastStatus, 302);
          assert.match(d.lastError, /redirects are not followed/);
          assert.equal((await s.api('DELETE', `/v1/webhooks/${h2.id}`)).status, 200);
        } finally {
          await redirecting.close();
        }

        // Redeliver sends a delivered event again, with the same id.
        const delivered = (await s.api('GET', `/v1/webhooks/${hook.id}/deliveries?status=delivered`)).body.deliveries[0];
        const n = flaky.received.length;
        const again = await s.api('POST', `/v1/webhooks/${hook.id}/deliveries/${delivered.id}/redeliver`, {});
        assert.equal(again.status, 202, again.text);
        await waitFor(() => flaky.received.length > n, 'the redelivery');
        assert.equal(flaky.received[n].json.id, delivered.eventId);
        const test2 = await s.api('POST', `/v1/webhooks/${hook.id}/test`, {});
        assert.equal(test2.status, 202);
        await waitFor(() => flaky.received.some((x) => x.json.id === test2.body.eventId), 'the test event');
        assert.equal((await s.api('DELETE', `/v1/webhooks/${hook.id}`)).status, 200);
        void target;
      } finally {
        await flaky.close();
        await target.close();
      }
    });

    test('security alerts: root.used, auth.fail_burst and audit.verify_failed reach a root webhook', async () => {
      const alerts = await startReceiver();
      try {
        const hook = await createHook(s, { url: `${alerts.url}/alerts`, events: ['root.used', 'auth.fail_burst', 'audit.verify_failed'] });
        alerts.secret = hook.secret;
        // root.used: one per request made with a root token.
        assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).status, 200);
        // Every root request is announced once answered, audited or not (a GET of the token list is not audited).
        const rootUse = (method: string, route: string) =>
          ofType(alerts, 'root.used').find((x) => x.json.data.method === method && x.json.data.route === route);
        await waitFor(() => rootUse('GET', '/v1/projects/:p/envs/:e/secrets') !== undefined, 'root.used for the read');
        assert.equal((await s.api('GET', '/v1/tokens')).status, 200);
        await waitFor(() => rootUse('GET', '/v1/tokens') !== undefined, 'root.used for the token list');
        const read = rootUse('GET', '/v1/projects/:p/envs/:e/secrets')!.json;
        assert.deepEqual([read.data.status, read.actor.name, typeof read.requestId], [200, 'root', 'string']);
        // A scoped token's request is no root use.
        assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, writer)).status, 200);
        assert.equal((await s.api('GET', '/v1/tokens', undefined, writer)).status, 200);
        assert.ok(ofType(alerts, 'root.used').every((x) => x.json.actor.name === 'root'));

        // audit.verify_failed: an event altered behind the server's back, then a verify.
        const db = sideDb(s);
        try {
          const [row] = await db('audit_events').select('seq').where({ action: 'secret.write' }).orderBy('seq').limit(1);
          await db('audit_events').where({ seq: row.seq }).update({ actor_name: 'mallory' });
        } finally {
          await db.destroy();
        }
        const v = await s.api('GET', '/v1/audit/verify');
        assert.equal(v.body.ok, false, v.text);
        await waitFor(() => ofType(alerts, 'audit.verify_failed').length === 1, 'audit.verify_failed');
        const vf = ofType(alerts, 'audit.verify_failed')[0].json;
        assert.equal(vf.data.firstBadSeq, v.body.firstBadSeq);
        assert.equal(vf.data.scheduled, false);
        // auth.fail_burst: the 5th failed authentication from one address in a window (--alert-auth-fail-burst 5). Last: it locks the address out.
        for (let i = 0; i < 5; i++) assert.equal((await s.api('GET', '/v1/projects', undefined, 'hush_not_a_token')).status, 401);
        await waitFor(() => ofType(alerts, 'auth.fail_burst').length === 1, 'auth.fail_burst');
        const burst = ofType(alerts, 'auth.fail_burst')[0].json;
        assert.deepEqual([burst.data.count, burst.data.threshold, burst.project], [5, 5, null]);
        assert.ok(burst.data.ip);

        assert.ok(alerts.received.every((x) => x.signed));
      } finally {
        await alerts.close();
      }
    });
  });
}

describe('scheduled alerts: audit.verify_failed from --verify-schedule, backup.failed from --backup-schedule', () => {
  test('both reach a root webhook, each tick once', async () => {
    const rx = await startReceiver();
    const dir = (await import('../helpers/server.js')).tempDir('hush-wh-sched-');
    const { writeFileSync } = await import('node:fs');
    const join = (await import('node:path')).join.bind(null);
    const pass = join(dir, 'pass');
    writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
    // A backup dir that cannot be made (its parent is a file): every scheduled backup fails.
    writeFileSync(join(dir, 'file'), '');
    const s = await startOn('sqlite', {
      'allow-private-webhooks': 'true',
      'verify-schedule': '*/2 * * * * *',
      'backup-schedule': '*/2 * * * * *',
      'backup-dir': join(dir, 'file', 'backups'),
      'backup-passphrase-file': pass,
    });
    try {
      const hook = await createHook(s, { url: `${rx.url}/sched`, events: ['audit.verify_failed', 'backup.failed'] });
      rx.secret = hook.secret;
      await waitFor(() => ofType(rx, 'backup.failed').length >= 1, 'backup.failed from the schedule');
      const bf = ofType(rx, 'backup.failed')[0].json;
      assert.equal(bf.data.scheduled, true);
      assert.match(bf.data.error, /ENOTDIR|EEXIST|not a directory/i);
      // A verified log sends nothing; an altered one fails the next scheduled verify.
      assert.equal(ofType(rx, 'audit.verify_failed').length, 0);
      const db = sideDb(s);
      try {
        const [row] = await db('audit_events').select('seq').orderBy('seq').limit(1);
        await db('audit_events').where({ seq: row.seq }).update({ actor_name: 'mallory' });
      } finally {
        await db.destroy();
      }
      await waitFor(() => ofType(rx, 'audit.verify_failed').length >= 1, 'audit.verify_failed from the schedule');
      const vf = ofType(rx, 'audit.verify_failed')[0].json;
      assert.deepEqual([vf.data.scheduled, vf.data.firstBadSeq], [true, 1]);
      assert.ok(rx.received.every((x) => x.signed));
    } finally {
      await s.close();
      await rx.close();
    }
  });
});

describe('a receiver that never answers', () => {
  test('the attempt ends at the 5 s timeout, is recorded as failed and retried', async () => {
    const rx = await startReceiver({ behaviour: 'hang' });
    const s = await startOn('sqlite', { 'allow-private-webhooks': 'true', 'webhook-max-backoff': '1s' });
    try {
      await seed(s.api, { api: { prod: {} } });
      const hook = await createHook(s, { url: `${rx.url}/slow`, events: ['secret.changed'], project: 'api' });
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/SLOW', { value: secretValue('slow') })).status, 200);
      await waitFor(
        async () => (await s.api('GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries[0]?.attempts >= 1,
        'the first attempt to time out',
      );
      const d = (await s.api('GET', `/v1/webhooks/${hook.id}/deliveries`)).body.deliveries[0];
      assert.deepEqual([d.status, d.lastStatus], ['pending', null]);
      assert.match(d.lastError, /no answer within 5 s/);
      await waitFor(() => rx.received.length >= 2, 'a second attempt');
    } finally {
      await s.close();
      await rx.close();
    }
  });
});
