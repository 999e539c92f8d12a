import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, onBackend, startOn, type TestServer } from '../helpers/server.js';

/** One row of the reference table printed at the end (the "must show"). */
const table: { backend: string; case: string; value: string; result: string }[] = [];

for (const backend of BACKENDS) {
  describe(`secret references on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let reader: string; // read:api/prod and read:api/dev only
    const P = '/v1/projects/api/envs/prod';
    const row = (c: string, value: string, result: string) => table.push({ backend, case: c, value, result });
    const put = async (path: string, key: string, value: string) => {
      const r = await s.api('PUT', `${path}/secrets/${key}`, { value });
      assert.equal(r.status, 200, r.text);
    };

    before(async () => {
      s = await startOn(backend);
      for (const p of ['api', 'billing']) assert.equal((await s.api('POST', '/v1/projects', { name: p })).status, 201);
      for (const [p, e] of [
        ['api', 'prod'],
        ['api', 'dev'],
        ['billing', 'prod'],
      ])
        assert.equal((await s.api('POST', `/v1/projects/${p}/envs`, { name: e })).status, 201);
      await put(P, 'DB_HOST', 'db.internal');
      await put(P, 'DB_PASS', 'pa55');
      await put('/v1/projects/api/envs/dev', 'SHARED', 'from-dev');
      await put('/v1/projects/billing/envs/prod', 'STRIPE_KEY', 'sk_live_billing');
      const t = await s.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read:api/prod', 'read:api/dev'], ttl: '1h' });
      assert.equal(t.status, 201, t.text);
      reader = t.body.token;
    });
    after(async () => {
      await s?.close();
    });

    it('same env: ${KEY} resolves in single and bulk reads', async () => {
      await put(P, 'DB_URL', 'postgres://app:${DB_PASS}@${DB_HOST}/app');
      const one = await s.api('GET', `${P}/secrets/DB_URL`, undefined, reader);
      assert.equal(one.status, 200);
      assert.equal(one.body.value, 'postgres://app:pa55@db.internal/app');
      const all = await s.api('GET', `${P}/secrets`, undefined, reader);
      assert.equal(all.body.secrets.DB_URL, 'postgres://app:pa55@db.internal/app');
      // `only` a key whose references are outside the subset still resolves
      const only = await s.api('GET', `${P}/secrets?only=DB_URL`, undefined, reader);
      assert.deepEqual(only.body.secrets, { DB_URL: 'postgres://app:pa55@db.internal/app' });
      row('same env', 'postgres://app:${DB_PASS}@${DB_HOST}/app', one.body.value);
    });

    it('another env: ${env.KEY} resolves with read on that env, and the audit event names it', async () => {
      await put(P, 'FROM_DEV', 'x-${dev.SHARED}');
      const r = await s.api('GET', `${P}/secrets/FROM_DEV`, undefined, reader);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.value, 'x-from-dev');
      const ev = (await s.api('GET', '/v1/audit?action=secret.read&order=desc&limit=1')).body.events[0];
      assert.deepEqual(ev.detail.references, ['api/dev']);
      row('another env', 'x-${dev.SHARED}', r.body.value);
    });

    it('another project: ${project.env.KEY} resolves for a token that may read it', async () => {
      await put(P, 'PAY', '${billing.prod.STRIPE_KEY}');
      const r = await s.api('GET', `${P}/secrets/PAY`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.value, 'sk_live_billing');
      const all = await s.api('GET', `${P}/secrets?only=PAY,FROM_DEV`);
      assert.deepEqual(all.body.secrets, { FROM_DEV: 'x-from-dev', PAY: 'sk_live_billing' });
      const ev = (await s.api('GET', '/v1/audit?action=secret.read&order=desc&limit=1')).body.events[0];
      assert.deepEqual([...ev.detail.references].sort(), ['api/dev', 'billing/prod']);
      row('another project', '${billing.prod.STRIPE_KEY}', r.body.value);
    });

    it('denied: a reference the token cannot read fails the read, names the reference, leaks nothing', async () => {
      for (const path of [`${P}/secrets/PAY`, `${P}/secrets`, `${P}/secrets?only=PAY`]) {
        const r = await s.api('GET', path, undefined, reader);
        assert.equal(r.status, 403, r.text);
        assert.equal(r.body.error.code, 'reference_forbidden');
        assert.match(r.body.error.message, /\$\{billing\.prod\.STRIPE_KEY\}/);
        assert.doesNotMatch(r.text, /sk_live/);
      }
      // what the token may read without the reference still works
      assert.equal((await s.api('GET', `${P}/secrets/DB_URL`, undefined, reader)).status, 200);
      const ev = (await s.api('GET', '/v1/audit?action=secret.read&outcome=denied&order=desc&limit=1')).body.events[0];
      assert.equal(ev.detail.code, 'reference_forbidden');
      row('denied', '${billing.prod.STRIPE_KEY} (token: read:api/prod,dev)', '403 reference_forbidden');
    });

    it('a reference to something missing fails the read (never an empty value)', async () => {
      await put(P, 'MISSING', 'a${NOPE}b');
      const r = await s.api('GET', `${P}/secrets/MISSING`);
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'reference_not_found');
      assert.match(r.body.error.message, /\$\{NOPE\}/);
      await s.api('DELETE', `${P}/secrets/MISSING`);
    });

    it('a cycle is refused at write time, and at read time when made through another env', async () => {
      await put(P, 'CA', 'a-${CB}');
      const w = await s.api('PUT', `${P}/secrets/CB`, { value: 'b-${CA}' });
      assert.equal(w.status, 422);
      assert.equal(w.body.error.code, 'reference_cycle');
      await s.api('DELETE', `${P}/secrets/CA`);
      const self = await s.api('PUT', `${P}/secrets/SELF`, { value: '${SELF}' });
      assert.equal(self.body.error.code, 'reference_cycle');
      const bulk = await s.api('PATCH', `${P}/secrets`, { set: { X1: '${X2}', X2: '${X1}' } });
      assert.equal(bulk.body.error.code, 'reference_cycle');
      // A writer that cannot read api/dev cannot see the cycle closing there: the write passes, the read refuses.
      const w2 = await s.api('POST', '/v1/tokens', { name: 'prod-writer', scopes: ['write:api/prod'], ttl: '1h' });
      await put('/v1/projects/api/envs/dev', 'LOOP', '${prod.CYC}');
      const blind = await s.api('PUT', `${P}/secrets/CYC`, { value: '${dev.LOOP}' }, w2.body.token);
      assert.equal(blind.status, 200, blind.text);
      const r = await s.api('GET', `${P}/secrets/CYC`);
      assert.equal(r.status, 422);
      assert.equal(r.body.error.code, 'reference_cycle');
      assert.match(r.body.error.message, /api\/prod\/CYC -> api\/dev\/LOOP -> api\/prod\/CYC/);
      assert.equal((await s.api('GET', `${P}/secrets`)).body.error.code, 'reference_cycle');
      await s.api('DELETE', `${P}/secrets/CYC`);
      row(
        'cycle',
        'CB = b-${CA}, CA = a-${CB}',
        `write ${w.status} ${w.body.error.code}; via other env: read ${r.status} ${r.body.error.code}`,
      );
    });

    it('a chain of 8 references resolves; 9 is refused (write time, and read time)', async () => {
      await put(P, 'D0', 'end');
      for (let i = 1; i <= 8; i++) await put(P, `D${i}`, `\${D${i - 1}}`);
      assert.equal((await s.api('GET', `${P}/secrets/D8`)).body.value, 'end');
      const w = await s.api('PUT', `${P}/secrets/D9`, { value: '${D8}' });
      assert.equal(w.status, 422);
      assert.equal(w.body.error.code, 'reference_too_deep');
      const bulk = await s.api('PATCH', `${P}/secrets`, { delete: [...Array(9).keys()].map((i) => `D${i}`) });
      assert.equal(bulk.status, 200);
    });

    it('escape: $${ is a literal ${, and a malformed reference is refused at write time', async () => {
      await put(P, 'SHELL', 'echo $${HOME} and $$ and ${DB_HOST}');
      const r = await s.api('GET', `${P}/secrets/SHELL`, undefined, reader);
      assert.equal(r.body.value, 'echo ${HOME} and $$ and db.internal');
      const bad = await s.api('PUT', `${P}/secrets/BAD`, { value: 'x ${not a ref} y' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_reference');
      const open = await s.api('PUT', `${P}/secrets/BAD`, { value: 'x ${UNCLOSED' });
      assert.equal(open.body.error.code, 'invalid_reference');
      row('escape', 'echo $${HOME} and $$ and ${DB_HOST}', r.body.value);
    });

    it('raw: ?raw=1 returns values as stored, even where resolving would be refused', async () => {
      const one = await s.api('GET', `${P}/secrets/PAY?raw=1`, undefined, reader);
      assert.equal(one.status, 200, one.text);
      assert.equal(one.body.value, '${billing.prod.STRIPE_KEY}');
      const all = await s.api('GET', `${P}/secrets?raw=1`, undefined, reader);
      assert.equal(all.body.secrets.SHELL, 'echo $${HOME} and $$ and ${DB_HOST}');
      assert.equal(all.body.secrets.DB_URL, 'postgres://app:${DB_PASS}@${DB_HOST}/app');
      // The cached (raw) values are not altered by an earlier resolved read, nor the other way round.
      assert.equal((await s.api('GET', `${P}/secrets?only=DB_URL`)).body.secrets.DB_URL, 'postgres://app:pa55@db.internal/app');
      row('raw', '${billing.prod.STRIPE_KEY} (?raw=1, token: read:api/prod,dev)', one.body.value);
    });

    it('references cannot blow a value up: repeated references past the size bound are refused', async () => {
      await put(P, 'C0', 'x'.repeat(1000));
      await put(P, 'C1', '${C0}'.repeat(200)); // 200,000 characters resolved: fine
      assert.equal((await s.api('GET', `${P}/secrets/C1`)).body.value.length, 200_000);
      const w = await s.api('PUT', `${P}/secrets/C2`, { value: '${C1}'.repeat(200) }); // 40,000,000: refused
      assert.equal(w.status, 422, w.text);
      assert.equal(w.body.error.code, 'reference_too_large');
      assert.equal((await s.api('PATCH', `${P}/secrets`, { delete: ['C0', 'C1'] })).status, 200);
    });

    it('a changed referenced value is seen by the next read', async () => {
      await put(P, 'DB_HOST', 'db2.internal');
      assert.equal((await s.api('GET', `${P}/secrets/DB_URL`)).body.value, 'postgres://app:pa55@db2.internal/app');
    });
  });
}

after(() => {
  if (!table.length) return;
  const w = [9, 16, 58];
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(w[i] ?? 0)).join(' | ')} |`;
  console.log(
    [
      '',
      'Reference tests:',
      line(['engine', 'case', 'stored value', 'read result']),
      ...table.map((r) => line([r.backend, r.case, r.value, r.result])),
    ].join('\n'),
  );
});
