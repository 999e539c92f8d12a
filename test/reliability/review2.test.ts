/**
 * Issue 21, second outside review of the merged hardening: token redaction
 * by shape in any letter case (item 3), no token stored as a name,
 * description or webhook URL (item 4), durations within what a timer holds
 * (item 7), and a total connection cap (item 8).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import { BACKENDS, capturedLogs, onBackend, startOn, startServer, type TestServer } from '../helpers/server.js';
import { loadConfig } from '../../vault/config.js';
import { auditEvents, call, connectionsPastCap, failingStart, masterKeyFile } from './support.js';
import { tempDir } from '../helpers/server.js';

/** A token-shaped string that is no real token (a fresh random one), in the case variants the review used. */
const body = formatToken((n) => randomBytes(n)).slice(5);
const VARIANTS = [`HUSH_${body}`, `Hush_${body}`, `hush_${body}`.toUpperCase()];

for (const backend of BACKENDS) {
  describe(`token-shaped text on ${backend} (review items 3 and 4)`, onBackend(backend), () => {
    let s: TestServer;
    before(async () => {
      s = await startOn(backend, { 'log-level': 'debug', 'allow-private-webhooks': 'true' });
      for (const p of ['POST /v1/projects {"name":"web"}', 'POST /v1/projects/web/envs {"name":"prod"}']) {
        const [m, path, b] = p.split(' ');
        assert.equal((await call(s.url, m, path, { token: s.rootToken, body: JSON.parse(b) })).status, 201);
      }
    });
    after(async () => {
      await s.close();
    });

    it('a token in any letter case is blanked from 404 echoes, logs and audit targets', async () => {
      const from = capturedLogs.length;
      for (const v of VARIANTS) {
        const nf = await call(s.url, 'GET', `/v1/nowhere/${v}`, { token: s.rootToken });
        assert.equal(nf.status, 404);
        assert.ok(!nf.text.includes(body) && !nf.text.toLowerCase().includes(body.toLowerCase()), nf.text);
        assert.match(nf.body.error.message, /\[redacted-token\]/);
        const miss = await call(s.url, 'GET', `/v1/projects/web/envs/prod/secrets/${v}`, { token: s.rootToken });
        assert.equal(miss.status, 404);
        assert.ok(!miss.text.toLowerCase().includes(body.toLowerCase()), miss.text);
      }
      const events = await auditEvents(s.url, s.rootToken);
      const reads = events.filter((e) => e.action === 'secret.read' && e.outcome !== 'ok');
      assert.ok(reads.length >= VARIANTS.length);
      assert.ok(!JSON.stringify(events).toLowerCase().includes(body.toLowerCase()), 'no audit event holds the token in any case');
      assert.ok(reads.some((e) => e.target.key === '[redacted-token]'));
      const lines = capturedLogs.slice(from).join('');
      assert.ok(lines.includes('[redacted-token]'));
      assert.ok(!lines.toLowerCase().includes(body.toLowerCase()), 'no log line holds the token in any case');
    });

    it('names that only start like a token (hush_feature_flag, HUSH_FEATURE_FLAG) are kept as they are everywhere', async () => {
      const from = capturedLogs.length;
      for (const name of ['hush_feature_flag', 'HUSH_FEATURE_FLAG', 'Hush_Release_Train_2027']) {
        assert.equal(
          (await call(s.url, 'PUT', `/v1/projects/web/envs/prod/secrets/${name}`, { token: s.rootToken, body: { value: 'on' } })).status,
          200,
        );
        const r = await call(s.url, 'GET', '/v1/projects/web/envs/prod/secrets', { token: s.rootToken });
        assert.equal(r.body.secrets[name], 'on');
        const nf = await call(s.url, 'GET', `/v1/nowhere/${name}`, { token: s.rootToken });
        assert.ok(nf.body.error.message.includes(name), nf.body.error.message);
      }
      const events = await auditEvents(s.url, s.rootToken);
      for (const name of ['hush_feature_flag', 'HUSH_FEATURE_FLAG', 'Hush_Release_Train_2027']) {
        assert.ok(
          events.some((e) => e.action === 'secret.write' && e.target.key === name),
          `the audit event names ${name}`,
        );
      }
      assert.ok(
        capturedLogs.slice(from).some((l) => l.includes('/secrets/hush_feature_flag')),
        'the log line keeps the name',
      );
    });

    it('a token name, token description, webhook URL or webhook description holding a token is refused: 400 token_in_text, nothing stored', async () => {
      for (const v of VARIANTS) {
        for (const req of [
          { name: `ci ${v}`, scopes: ['read:web/prod'] },
          { name: 'ci', description: `copied from ${v}`, scopes: ['read:web/prod'] },
        ]) {
          const r = await call(s.url, 'POST', '/v1/tokens', { token: s.rootToken, body: req });
          assert.equal(r.status, 400, r.text);
          assert.equal(r.body.error.code, 'token_in_text');
          assert.ok(!r.text.toLowerCase().includes(body.toLowerCase()), r.text);
        }
        for (const wb of [
          { url: `https://127.0.0.1:9/hook?auth=${v}`, events: ['secret.write'] },
          { url: 'https://127.0.0.1:9/hook', events: ['secret.write'], description: `token ${v}` },
        ]) {
          const r = await call(s.url, 'POST', '/v1/webhooks', { token: s.rootToken, body: wb });
          assert.equal(r.status, 400, r.text);
          assert.equal(r.body.error.code, 'token_in_text');
        }
      }
      // Percent-encoded in a webhook URL, too.
      const enc = await call(s.url, 'POST', '/v1/webhooks', {
        token: s.rootToken,
        body: { url: `https://127.0.0.1:9/hook?auth=hush%5F${body}`, events: ['secret.write'] },
      });
      assert.equal(enc.body.error?.code, 'token_in_text');
      const tokens = await call(s.url, 'GET', '/v1/tokens', { token: s.rootToken });
      const hooks = await call(s.url, 'GET', '/v1/webhooks', { token: s.rootToken });
      assert.ok(!(tokens.text + hooks.text).toLowerCase().includes(body.toLowerCase()), 'nothing token-shaped was stored');
      // Names like hush_feature_flag are fine.
      const ok = await call(s.url, 'POST', '/v1/tokens', {
        token: s.rootToken,
        body: { name: 'hush_feature_flag reader', description: 'HUSH_FEATURE_FLAG', scopes: ['read:web/prod'] },
      });
      assert.equal(ok.status, 201, ok.text);
    });
  });
}

describe('durations within what a timer holds (review item 7)', () => {
  it('every duration setting that becomes a timer refuses more than 24d, TTLs more than 100 years, with one line naming the setting', () => {
    for (const flag of [
      'request-timeout',
      'keep-alive-timeout',
      'rate-limit-window',
      'auth-fail-window',
      'audit-checkpoint-interval',
      'rotation-check-interval',
      'webhook-max-backoff',
    ]) {
      assert.throws(
        () => loadConfig({ [flag]: '99999d' }, {}),
        (e: Error) =>
          e.message === `invalid --${flag}: must be at most 24d (it is a timer, and Node's timers hold at most about 24.8 days)`,
        flag,
      );
      assert.throws(() => loadConfig({ [flag]: '25d' }, {}), /at most 24d/, flag);
      assert.ok(loadConfig({ [flag]: '24d' }, {}), flag);
    }
    assert.throws(() => loadConfig({}, { HUSH_REQUEST_TIMEOUT: '99999d' }), /invalid HUSH_REQUEST_TIMEOUT: must be at most 24d/);
    assert.throws(() => loadConfig({ 'token-max-ttl': '200000y' }, {}), /invalid --token-max-ttl: must be at most 36500d/);
    assert.equal(loadConfig({ 'token-max-ttl': '100y', 'token-default-ttl': '90d' }, {}).tokenMaxTtlMs, 36_500 * 86_400_000);
  });

  it('hush server --request-timeout 99999d does not start: one line, exit code of a bad setting', async () => {
    const r = await failingStart([
      '--data-dir',
      tempDir(),
      '--listen',
      '127.0.0.1:0',
      '--master-key-file',
      masterKeyFile(),
      '--request-timeout',
      '99999d',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid --request-timeout: must be at most 24d/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});

describe('a total connection cap (review item 8)', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ settings: { 'max-connections': '20', 'max-connections-per-address': '1000' } });
  });
  after(async () => {
    await s.close();
  });

  it('past --max-connections, new connections are closed unanswered (no 500), counted in hush_connections_refused_total; the others are served', async () => {
    assert.deepEqual(await connectionsPastCap(s.url, 30, 10), { closedUnanswered: 10, served: 20 });
    const m = await call(s.url, 'GET', '/v1/sys/metrics', { token: s.rootToken });
    // Ten, and any the retry above made while the closed ones were still counted.
    const n = Number(/^hush_connections_refused_total\{reason="max_connections"\} (\d+)$/m.exec(m.text)?.[1]);
    assert.ok(
      n >= 10,
      m.text
        .split('\n')
        .filter((l) => l.includes('refused'))
        .join('\n'),
    );
    assert.ok(
      capturedLogs.some((l) => l.includes('--max-connections)')),
      'the refusal is logged',
    );
  });
});
