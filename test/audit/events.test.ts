import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { capturedLogs, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, createToken, makeEnv, verify, type Ev } from './util.js';

const VALUES = ['s3cr3t-db-password-Zq9', 'sk_live_api_key_Yt7', 'bulk-only-value-Pw2', 'changed-value-Kr5'];

describe('what the audit log records', () => {
  let s: TestServer;
  let events: Ev[];
  const tokens: string[] = [];
  let auditFile: string;
  let newKey: string;
  let reader: { token: string; id: string };

  before(async () => {
    auditFile = join(tempDir('hush-audit-file-'), 'audit.jsonl');
    s = await startServer({ settings: { 'audit-file': auditFile } });
    tokens.push(s.rootToken);
    const p = '/v1/projects/api/envs/prod';
    await makeEnv(s, 'api', 'prod', 'dev');
    assert.equal((await s.api('PUT', `${p}/secrets/DB_PASSWORD`, { value: VALUES[0] })).status, 200);
    assert.equal((await s.api('PUT', `${p}/secrets/DB_PASSWORD`, { value: VALUES[3], cas: 1 })).status, 200);
    assert.equal((await s.api('GET', `${p}/secrets/DB_PASSWORD`)).status, 200);
    assert.equal((await s.api('PATCH', `${p}/secrets`, { set: { API_KEY: VALUES[1], BULK: VALUES[2] } })).status, 200);
    assert.equal((await s.api('GET', `${p}/secrets`)).status, 200);
    assert.equal((await s.api('GET', `${p}/keys`)).status, 200);
    assert.equal((await s.api('GET', `${p}/secrets/DB_PASSWORD/versions`)).status, 200);
    assert.equal((await s.api('DELETE', `${p}/secrets/BULK`)).status, 200);

    reader = await createToken(s, 'dev-reader', ['read:api/dev']);
    tokens.push(reader.token);
    // denied by the route's grant check
    assert.equal((await s.api('GET', `${p}/secrets/API_KEY`, undefined, reader.token)).status, 403);
    // failed inside the service: recorded with outcome error
    assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/MISSING', undefined, reader.token)).status, 404);
    // denied inside the service (a token cannot grant more than it holds)
    const admin = await createToken(s, 'api-admin', ['admin:api']);
    tokens.push(admin.token);
    const over = await s.api('POST', '/v1/tokens', { name: 'too-much', scopes: ['read:other/prod'] }, admin.token);
    assert.equal(over.status, 403);

    assert.equal((await s.api('POST', '/v1/projects/api/rotate', { rewrap: true })).status, 200);
    assert.equal((await s.api('DELETE', `/v1/tokens/${reader.id}`)).status, 200);
    assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets', undefined, reader.token)).status, 401);
    assert.equal((await s.api('DELETE', '/v1/projects/api/envs/dev')).status, 200);
    await makeEnv(s, 'scratch');
    assert.equal((await s.api('DELETE', '/v1/projects/scratch')).status, 200);

    newKey = randomBytes(32).toString('base64');
    const rot = await s.api('POST', '/v1/sys/rotate-master', { newKey });
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    events = await allEvents(s);
  });
  after(async () => {
    await s.close();
  });

  it('every action the server performs is recorded', () => {
    const actions = new Set(events.map((e) => e.action));
    for (const a of [
      'vault.init',
      'server.start',
      'project.create',
      'project.delete',
      'env.create',
      'env.delete',
      'secret.write',
      'secret.read',
      'secret.list',
      'secret.versions',
      'secrets.bulk',
      'secret.delete',
      'token.create',
      'token.revoke',
      'auth.fail',
      'key.rotate',
      'key.rewrap',
      'key.rotate_master',
    ])
      assert.ok(actions.has(a), `${a} recorded (have ${[...actions].join(', ')})`);
  });

  it('the chain over them verifies and the seqs are contiguous', async () => {
    assertContiguous(events);
    assert.equal((await verify(s)).ok, true);
  });

  it('reads are recorded with key names and never values', () => {
    const one = events.find((e) => e.action === 'secret.read' && e.target.key === 'DB_PASSWORD')!;
    assert.deepEqual(one.target, { key: 'DB_PASSWORD', version: 2 });
    assert.equal(one.project, 'api');
    assert.equal(one.env, 'prod');
    assert.equal(one.outcome, 'ok');
    const all = events.find((e) => e.action === 'secret.read' && Array.isArray(e.target.keys))!;
    assert.deepEqual([...all.target.keys].sort(), ['API_KEY', 'BULK', 'DB_PASSWORD']);
    assert.equal(all.detail.count, 3);
    const list = events.find((e) => e.action === 'secret.list')!;
    assert.equal(list.detail.count, 3);
  });

  it('changes name what changed', () => {
    const writes = events.filter((e) => e.action === 'secret.write');
    assert.deepEqual(
      writes.map((e) => [e.target.key, e.target.version, e.detail.cas]),
      [
        ['DB_PASSWORD', 1, undefined],
        ['DB_PASSWORD', 2, 1],
      ],
    );
    const bulk = events.find((e) => e.action === 'secrets.bulk')!;
    assert.deepEqual(bulk.target, { added: ['API_KEY', 'BULK'], changed: [], deleted: [] });
    const del = events.find((e) => e.action === 'secret.delete')!;
    assert.deepEqual(del.target, { key: 'BULK', version: 2 });
    const rot = events.find((e) => e.action === 'key.rotate')!;
    assert.equal(rot.detail.dekVersion, 2);
    const created = events.find((e) => e.action === 'token.create' && e.target.name === 'dev-reader')!;
    assert.deepEqual(created.detail.scopes, ['read:api/dev']);
    assert.equal(created.target.tokenId, reader.id);
    const revoked = events.find((e) => e.action === 'token.revoke')!;
    assert.equal(revoked.target.tokenId, reader.id);
  });

  it('each event names its actor, client address and request id', () => {
    const root = events.find((e) => e.action === 'project.create')!;
    assert.equal(root.actor.name, 'root');
    assert.match(root.actor.id, /^tok_/);
    assert.equal(root.ip, '127.0.0.1');
    assert.match(root.requestId!, /^req_/);
    const sys = events.find((e) => e.action === 'server.start')!;
    assert.deepEqual(sys.actor, { id: 'system', name: 'system' });
    assert.equal(sys.detail.pid, process.pid);
  });

  it('a request refused by its grant is recorded with outcome denied and the missing grant', () => {
    const d = events.find((e) => e.outcome === 'denied' && e.action === 'secret.read')!;
    assert.equal(d.actor.id, reader.id);
    assert.equal(d.project, 'api');
    assert.equal(d.env, 'prod');
    assert.equal(d.detail.missing, 'read:api/prod');
  });

  it('a request the service refuses (403) is recorded as denied, one that fails (404) as error', () => {
    const denied = events.filter((e) => e.action === 'token.create' && e.outcome === 'denied');
    assert.equal(denied.length, 1);
    assert.equal(denied[0].actor.name, 'api-admin');
    assert.equal(denied[0].detail.code, 'forbidden');
    const err = events.filter((e) => e.outcome === 'error');
    assert.equal(err.length, 1);
    assert.equal(err[0].action, 'secret.read');
    assert.deepEqual([err[0].project, err[0].env, err[0].target.key], ['api', 'dev', 'MISSING']);
    assert.deepEqual([err[0].detail.status, err[0].detail.code], [404, 'secret_not_found']);
  });

  it('a failed authentication is recorded as auth.fail with its reason, never the token', () => {
    const f = events.filter((e) => e.action === 'auth.fail');
    assert.equal(f.length, 1);
    assert.equal(f[0].outcome, 'denied');
    assert.equal(f[0].actor.id, 'anonymous');
    assert.equal(f[0].detail.reason, 'revoked');
    assert.equal(f[0].detail.count, 1);
  });

  it('no event holds a secret value, a token or the new master key (database, API and file sink)', () => {
    const dump = JSON.stringify(events);
    const file = readFileSync(auditFile, 'utf8');
    for (const v of [...VALUES, ...tokens, newKey]) {
      assert.ok(!dump.includes(v), `API events leak ${v.slice(0, 8)}...`);
      assert.ok(!file.includes(v), `audit file leaks ${v.slice(0, 8)}...`);
    }
    assert.ok(!/hush_[0-9A-Za-z]{20}/.test(dump + file), 'nothing shaped like a token');
  });

  it('a read answered 304 (If-None-Match matches) is not recorded: it discloses nothing', async () => {
    const p = '/v1/projects/api/envs/prod/secrets';
    const first = await s.api('GET', p);
    const etag = first.headers.get('etag')!;
    const head = (await verify(s)).headSeq;
    const again = await s.api('GET', p, undefined, undefined, { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal((await verify(s)).headSeq, head);
  });

  it('no log line carries a secret value or token either', () => {
    const logs = capturedLogs.join('');
    for (const v of [...VALUES, ...tokens, newKey]) assert.ok(!logs.includes(v), `logs leak ${v.slice(0, 8)}...`);
  });
});

describe('auth.fail is rate-limited to one event per address per minute, with counts', () => {
  const bad = 'hush_notarealtokenatall';
  const xff = (ip: string) => ({ 'x-forwarded-for': ip });

  it('30 bad requests from one address: 20 get 401, 10 get 429, exactly one event, and the server still answers', async () => {
    const s = await startServer({ settings: { 'trust-proxy': '127.0.0.1/32' } });
    const { dataDir, rootToken } = s;
    let closed = false;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await s.api('GET', '/v1/projects', undefined, bad, xff('203.0.113.7'))).status);
      assert.deepEqual(statuses, [...Array(20).fill(401), ...Array(10).fill(429)]);
      // another address is unaffected, and gets its own event
      assert.equal((await s.api('GET', '/v1/tokens/self', undefined, bad, xff('198.51.100.9'))).status, 401);
      assert.equal((await s.api('GET', '/v1/projects', undefined, undefined, xff('198.51.100.10'))).status, 200);
      assert.equal((await s.api('GET', '/v1/sys/health', undefined, null, xff('203.0.113.7'))).status, 200);

      const fails = await allEvents(s, 'action=auth.fail');
      const mine = fails.filter((e) => e.ip === '203.0.113.7');
      assert.equal(mine.length, 1);
      assert.deepEqual(mine[0].detail, {
        reason: 'malformed',
        count: 1,
        reasons: { malformed: 1 },
        lockedOut: 0,
        aggregated: false,
        network: '203.0.113.0/24',
      });
      assert.deepEqual(mine[0].target, { route: '/v1/projects', method: 'GET' });
      assert.equal(fails.filter((e) => e.ip === '198.51.100.9').length, 1);
      assert.equal(fails.length, 2);

      // On shutdown the suppressed failures are written as one summary, so the flood's size is kept.
      await s.close({ keepDir: true });
      closed = true;
      const again = await startServer({ dataDir });
      try {
        const after = (await allEvents({ api: (m, p, b, t = rootToken, h) => again.api(m, p, b, t, h) }, 'action=auth.fail')).filter(
          (e) => e.ip === '203.0.113.7',
        );
        assert.equal(after.length, 2);
        const sum = after[1].detail;
        assert.equal(sum.aggregated, true);
        assert.equal(sum.count, 19);
        assert.equal(sum.lockedOut, 10);
        assert.deepEqual(sum.reasons, { malformed: 19 });
        assert.equal(sum.network, '203.0.113.0/24');
        assert.equal(sum.addresses, 1);
        assert.equal(after[0].detail.count + sum.count + sum.lockedOut, 30, 'every request of the flood is accounted for');
        assert.ok(Date.parse(sum.since) <= Date.parse(sum.until));
      } finally {
        await again.close();
      }
    } finally {
      if (!closed) await s.close();
    }
  });

  it('below the lockout limit: 30 failures still make one event, and a good token from the same address works', async () => {
    const s = await startServer({ settings: { 'auth-fail-limit': '1000' } });
    try {
      for (let i = 0; i < 30; i++) assert.equal((await s.api('GET', '/v1/projects', undefined, bad)).status, 401);
      assert.equal((await s.api('GET', '/v1/projects')).status, 200);
      const fails = await allEvents(s, 'action=auth.fail');
      assert.equal(fails.length, 1);
      assert.equal(fails[0].detail.count, 1);
    } finally {
      await s.close();
    }
  });
});
