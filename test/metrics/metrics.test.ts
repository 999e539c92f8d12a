/**
 * GET /v1/sys/metrics on real servers: Prometheus text that Debian's promtool
 * accepts, series for what the server did (requests by route pattern, group
 * commits, token lookups, backups, the pool, the seal), no project, env, key
 * or token name anywhere in it, the metrics grant, and --metrics-public.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../vault/config.js';
import { buildServer } from '../../vault/server.js';
import { masterKeyFromBase64 } from '../../vault/crypto/keyring.js';
import { BACKENDS, onBackend, startOn, tempDir, type TestServer } from '../helpers/server.js';
import { mint, remember } from '../tokens/support.js';
import { rootCli } from '../cli/helpers.js';

const PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
const PROMTOOL_SKIP = PROMTOOL ? false : "promtool not found: install Debian's prometheus package (.ci/run does)";

async function scrape(url: string, token: string | null): Promise<{ status: number; type: string | null; text: string }> {
  const r = await fetch(`${url}/v1/sys/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
}

/** The value of one series (its exact name and labels as printed), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function promtoolCheck(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

for (const backend of BACKENDS) {
  describe(`metrics on ${backend}`, onBackend(backend), () => {
    let s: TestServer;
    let metricsToken: string;
    // Names that must never become labels: they are in the vault, so a label carrying one would show here.
    const project = `mproj${randomBytes(3).toString('hex')}`;
    const env = `menv${randomBytes(3).toString('hex')}`;
    const key = `MKEY_${randomBytes(3).toString('hex').toUpperCase()}`;

    before(async () => {
      s = await startOn(backend);
      remember(s.rootToken);
      metricsToken = (await mint(s, ['metrics'], { name: 'scraper' })).token;
      assert.equal((await s.api('POST', '/v1/projects', { name: project })).status, 201);
      assert.equal((await s.api('POST', `/v1/projects/${project}/envs`, { name: env })).status, 201);
      for (let i = 0; i < 3; i++)
        assert.equal((await s.api('PUT', `/v1/projects/${project}/envs/${env}/secrets/${key}`, { value: `v${i}` })).status, 200);
      assert.equal((await s.api('GET', `/v1/projects/${project}/envs/${env}/secrets/${key}`)).status, 200);
      assert.equal((await s.api('GET', `/v1/projects/${project}/envs/${env}/secrets/NOPE_${key}`)).status, 404);
    });
    after(async () => {
      await s?.close();
    });

    it('a token with the metrics grant gets Prometheus text that promtool check metrics accepts', { skip: PROMTOOL_SKIP }, async (t) => {
      const r = await scrape(s.url, metricsToken);
      assert.equal(r.status, 200);
      assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
      const check = promtoolCheck(r.text);
      t.diagnostic(`promtool check metrics: exit ${check.status}${check.out ? `: ${check.out}` : ', no problems'}`);
      assert.equal(check.status, 0, check.out);
      assert.equal(check.out, '');
    });

    it('requests are counted by route pattern, method and status; no project, env, key or token name appears', async () => {
      const { text } = await scrape(s.url, metricsToken);
      const route = '/v1/projects/:p/envs/:e/secrets/:key';
      assert.ok(
        (sample(text, `hush_http_request_duration_seconds_count{method="PUT",route="${route}",status="200"}`) ?? 0) >= 3,
        text.slice(0, 3000),
      );
      assert.ok((sample(text, `hush_http_request_duration_seconds_count{method="GET",route="${route}",status="200"}`) ?? 0) >= 1);
      assert.ok((sample(text, `hush_http_request_duration_seconds_count{method="GET",route="${route}",status="404"}`) ?? 0) >= 1);
      for (const name of [project, env, key, s.rootToken, metricsToken])
        assert.ok(!text.includes(name), `${name.slice(0, 12)}… appears in the metrics`);
    });

    it('URLs that match no route share one series, whatever they are', async () => {
      for (const p of ['/v1/nope/a', '/v1/nope/b', `/v1/${randomBytes(8).toString('hex')}`])
        assert.equal((await fetch(`${s.url}${p}`)).status, 404);
      const { text } = await scrape(s.url, metricsToken);
      assert.ok((sample(text, 'hush_http_request_duration_seconds_count{method="other",route="(unmatched)",status="404"}') ?? 0) >= 3);
      assert.ok(!text.includes('/v1/nope'));
    });

    it('group commits, audit events, token lookups, the pool and the seal are reported', async () => {
      const { text } = await scrape(s.url, metricsToken);
      assert.ok((sample(text, 'hush_audit_events_total') ?? 0) >= 5, 'audit events committed');
      assert.ok((sample(text, 'hush_audit_batch_size_count') ?? 0) >= 1);
      assert.ok((sample(text, 'hush_audit_batch_size_sum') ?? 0) >= (sample(text, 'hush_audit_batch_size_count') ?? 0));
      assert.ok((sample(text, 'hush_audit_append_duration_seconds_count') ?? 0) >= 1);
      assert.ok((sample(text, 'hush_audit_batch_commit_duration_seconds_count') ?? 0) >= 1);
      const lookups = ['hit', 'miss', 'uncached'].map((c) => sample(text, `hush_token_lookups_total{cache="${c}"}`) ?? NaN);
      assert.ok(
        lookups.every((n) => n >= 0),
        'every cache series is present',
      );
      if (backend === 'sqlite') assert.ok(lookups[0] >= 1, 'SQLite: repeated requests with one token hit the cache');
      else assert.ok(lookups[2] >= 1, 'PostgreSQL: lookups are uncached');
      assert.equal(sample(text, 'hush_sealed'), 0);
      assert.equal(sample(text, 'hush_db_pool_max'), backend === 'sqlite' ? 1 : 10);
      assert.ok(sample(text, 'hush_db_pool_connections{state="used"}') !== undefined);
      assert.equal(sample(text, 'hush_db_pool_waiting'), 0);
      assert.equal(sample(text, `hush_info{version="0.1.0",storage="${backend}"}`), 1);
    });

    if (backend === 'postgres') {
      it('a connection held out of the pool shows as used', async () => {
        const trx = await s.server.container.db.transaction();
        try {
          await trx.raw('select 1');
          const { text } = await scrape(s.url, metricsToken);
          assert.ok(
            (sample(text, 'hush_db_pool_connections{state="used"}') ?? 0) >= 1,
            text
              .split('\n')
              .filter((l) => l.startsWith('hush_db_pool'))
              .join('\n'),
          );
        } finally {
          await trx.rollback();
        }
      });
    }

    it("a backup sets the last backup's time, duration and size", async () => {
      const before_ = await scrape(s.url, metricsToken);
      assert.equal(sample(before_.text, 'hush_backup_last_success_timestamp_seconds'), 0, 'no backup yet');
      const t0 = Date.now() / 1000;
      const r = await s.api('POST', '/v1/backups', { passphrase: remember(`pass-${randomBytes(6).toString('hex')}`), armor: true });
      assert.equal(r.status, 200);
      const size = Buffer.byteLength(r.text);
      // The figures are written once the stream is done: wait for them to show (deadline only for a failing run).
      let text = '';
      for (const end = Date.now() + 20_000; Date.now() < end;) {
        text = (await scrape(s.url, metricsToken)).text;
        if ((sample(text, 'hush_backup_last_size_bytes') ?? 0) > 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(sample(text, 'hush_backup_last_size_bytes'), size);
      assert.ok((sample(text, 'hush_backup_last_success_timestamp_seconds') ?? 0) >= Math.floor(t0));
      assert.ok((sample(text, 'hush_backup_last_duration_seconds') ?? -1) >= 0);
      assert.equal(sample(text, 'hush_backup_stats_unavailable'), 0);
    });

    it('overdue secrets are counted, with no per-secret label', async () => {
      assert.equal(sample((await scrape(s.url, metricsToken)).text, 'hush_secrets_overdue'), 0);
      const past = new Date(Date.now() - 86_400_000).toISOString();
      const r = await s.api('PUT', `/v1/projects/${project}/envs/${env}/secrets/${key}/policy`, { expiresAt: past });
      assert.equal(r.status, 200, r.text);
      const { text } = await scrape(s.url, metricsToken);
      assert.equal(sample(text, 'hush_secrets_overdue'), 1);
      assert.ok(!text.includes(key), 'the overdue secret is not named');
      assert.equal((await s.api('PUT', `/v1/projects/${project}/envs/${env}/secrets/${key}/policy`, { expiresAt: null })).status, 200);
      assert.equal(sample((await scrape(s.url, metricsToken)).text, 'hush_secrets_overdue'), 0);
    });

    it('no token: 401; a token without the metrics grant: 403 naming it', async () => {
      assert.equal((await scrape(s.url, null)).status, 401);
      const reader = (await mint(s, [`read:${project}/${env}`], { name: 'reader' })).token;
      const r = await scrape(s.url, reader);
      assert.equal(r.status, 403);
      assert.equal(JSON.parse(r.text).error.code, 'forbidden');
      assert.match(JSON.parse(r.text).error.message, /metrics/);
      const auditor = (await mint(s, ['audit'], { name: 'auditor' })).token;
      assert.equal((await scrape(s.url, auditor)).status, 403);
      assert.equal((await scrape(s.url, s.rootToken)).status, 200, 'root implies metrics');
    });

    it('`hush tokens create --scope metrics` makes a token that scrapes', async () => {
      const r = await rootCli(s.url, s.rootToken).run(['tokens', 'create', '--name', 'prometheus', '--scope', 'metrics', '--ttl', '30d']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Created token prometheus \(tok_\w+\): metrics, expires /);
      const token = remember(r.stdout.trim());
      assert.equal((await scrape(s.url, token)).status, 200);
    });

    it('a metrics token can mint a metrics child and nothing more', async () => {
      assert.equal((await s.api('POST', '/v1/tokens', { name: 'child', scopes: ['metrics'] }, metricsToken)).status, 201);
      assert.equal((await s.api('POST', '/v1/tokens', { name: 'child', scopes: ['audit'] }, metricsToken)).status, 403);
    });
  });
}

describe('--metrics-public', () => {
  it('is refused on a non-loopback listener and behind --trust-proxy', async () => {
    const dir = tempDir('hush-metrics-');
    for (const settings of [
      { listen: '0.0.0.0:0', 'insecure-http': true },
      { listen: '127.0.0.1:0', 'trust-proxy': '127.0.0.1' },
    ]) {
      const cfg = loadConfig({ 'data-dir': dir, 'metrics-public': true, ...settings }, {});
      await assert.rejects(buildServer(cfg), (e: Error & { code?: string }) => /refusing --metrics-public/.test(e.message));
    }
    assert.throws(
      () => loadConfig({ 'data-dir': dir }, { HUSH_METRICS_PUBLIC: 'maybe' }),
      /invalid HUSH_METRICS_PUBLIC: must be true or false/,
    );
  });

  it('serves without a token, and while sealed reports hush_sealed 1; without it a sealed server answers 503 sealed', async () => {
    const masterKey = remember(randomBytes(32).toString('base64'));
    const pub = await startOn('sqlite', { 'metrics-public': true, 'master-key': masterKey });
    const closed = await startOn('sqlite', { 'master-key': masterKey });
    try {
      assert.equal((await scrape(pub.url, null)).status, 200);
      for (const s of [pub, closed]) assert.equal((await s.api('POST', '/v1/sys/seal', {})).status, 200);
      const r = await scrape(pub.url, null);
      assert.equal(r.status, 200);
      assert.equal(sample(r.text, 'hush_sealed'), 1);
      assert.equal(sample(r.text, 'hush_audit_queue_jobs'), 0);
      if (PROMTOOL) assert.equal(promtoolCheck(r.text).status, 0);
      const sealed = await scrape(closed.url, remember(closed.rootToken));
      assert.equal(sealed.status, 503);
      assert.equal(JSON.parse(sealed.text).error.code, 'sealed');
      for (const s of [pub, closed])
        await s.server.runtime.start(async () => ({ mk: await masterKeyFromBase64(masterKey, 'the test key') }));
      assert.equal(sample((await scrape(pub.url, null)).text, 'hush_sealed'), 0);
    } finally {
      await pub.close();
      await closed.close();
    }
  });
});
