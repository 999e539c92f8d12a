/**
 * Upgrade: a vault made by the previous release opens with this one.
 *
 * The previous release is not re-created here: its code is taken from git
 * history (PREVIOUS_RELEASE), built once into a temp dir (cached by commit),
 * and its own `hush server` makes the vault: a project, secrets with version
 * history, a delete, a data-key rotation, scoped tokens, a revocation, reads,
 * a denial and a failed authentication, so its single audit chain
 * (audit_head) has 20+ events. Then this build's `hush server` opens the same
 * data dir (and PostgreSQL database) and must find every token, value and
 * version as they were, and the old chain intact as stream 0
 * (migrations/20261207000000_audit_streams.ts; docs/audit.md, "Vaults made
 * before streams"). Last, one old event is edited in the database, and
 * verification must name it: stream 0 is really checked, not waved through.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { spawnListening, spawnServer, type Listening } from '../helpers/cli.js';
import { apiFor, type Api } from '../helpers/http.js';
import { BACKENDS, freshPgDatabase, onBackend, tempDir } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';
import { allEvents, assertContiguous, createToken, verify, type Ev } from './util.js';

/**
 * The previous release: the last commit before the audit-streams change
 * (a3eecb2, which turned the single chain `audit_head` into stream 0). Its
 * schema is migrations/20261123000000_initial.ts alone.
 */
const PREVIOUS_RELEASE = 'c7a66af';

/** This checkout (the compiled test is dist/test/audit/upgrade.test.js). */
const ROOT = new URL('../../../', import.meta.url).pathname;
/** Where the previous release is built, once per machine: reused while its marker is there. */
const CACHE = join(tmpdir(), `hush-prev-release-${PREVIOUS_RELEASE}`);
/** Written last by a successful build; holds the full commit id. */
const MARKER = '.hush-prev-release-built';

/** Why the previous release cannot be had here (no cached build and no git history with the commit), or false. */
const PREV_SKIP: string | false = (() => {
  if (existsSync(join(CACHE, MARKER))) return false;
  const r = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${PREVIOUS_RELEASE}^{commit}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error)
    return (
      `the previous release (${PREVIOUS_RELEASE}) cannot be built: git is not available ` + `(${(r.error as NodeJS.ErrnoException).code})`
    );
  if (r.status !== 0)
    return (
      `the previous release (${PREVIOUS_RELEASE}) cannot be built: commit ${PREVIOUS_RELEASE} is not ` +
      `in the git history of ${ROOT} (a shallow clone or a source archive?)`
    );
  return false;
})();

/**
 * node_modules for the old tree: each entry a link to this checkout's (same
 * locked dependencies), except the workspace SDK, which is the old tree's
 * own sdk/. Redone when the cache was linked from another checkout.
 */
function linkNodeModules(dir: string): void {
  const from = join(ROOT, 'node_modules');
  const stamp = join(dir, 'node_modules.from');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === from && existsSync(join(dir, 'node_modules', 'knex', 'package.json'))) return;
  const tmp = join(dir, `node_modules.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  for (const name of readdirSync(from)) {
    symlinkSync(name === 'hush-vault-sdk' ? '../sdk' : join(from, name), join(tmp, name));
  }
  rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
  renameSync(tmp, join(dir, 'node_modules'));
  writeFileSync(stamp, from);
}

/**
 * The previous release's server, built from git (its package.json build
 * minus the single-file client, which the server does not use). Returns the
 * tree and the full commit id.
 */
function previousRelease(): { dir: string; commit: string } {
  if (!existsSync(join(CACHE, MARKER))) {
    const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', `${PREVIOUS_RELEASE}^{commit}`], { encoding: 'utf8' }).trim();
    // Built beside the cache and renamed into place, so a failed or concurrent build never leaves a half-built cache.
    const work = `${CACHE}.building-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', commit], { maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', work], { input: tar });
    linkNodeModules(work);
    const run = (args: string[]) => {
      const r = spawnSync(process.execPath, args, { cwd: work, encoding: 'utf8' });
      if (r.status !== 0)
        throw new Error(
          `building the previous release (${commit}) in ${work}: node ${args.join(' ')} failed ` +
            `(${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}${r.stderr}`,
        );
    };
    run(['sdk/build.mjs']);
    run([join(work, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    run(['scripts/postbuild.mjs']);
    assert.ok(existsSync(join(work, 'dist', 'cli', 'main.js')), 'the previous release built its CLI');
    writeFileSync(join(work, MARKER), `${commit}\n`);
    if (existsSync(CACHE) && !existsSync(join(CACHE, MARKER))) rmSync(CACHE, { recursive: true, force: true });
    try {
      renameSync(work, CACHE);
    } catch (e) {
      // Another run built it meanwhile: use that one.
      if (!existsSync(join(CACHE, MARKER))) throw e;
      rmSync(work, { recursive: true, force: true });
    }
  }
  linkNodeModules(CACHE);
  return { dir: CACHE, commit: readFileSync(join(CACHE, MARKER), 'utf8').trim() };
}

/** A verify answer of this release (util.verify types the fields both releases share). */
type Verified = Awaited<ReturnType<typeof verify>> & { streams: number; checkpoint: { id: number; hash: string } | null };

const P = '/v1/projects/api/envs/prod';
const D = '/v1/projects/api/envs/dev';

/** Every value the old server left current, by path; and the ones it deleted. */
const CURRENT: Record<string, string> = {
  [`${P}/secrets/DB_URL`]: 'postgres://app:pw-Xq81@db.internal/app?sslmode=require',
  [`${P}/secrets/API_KEY`]: 'sk_live_second_Vb72',
  [`${P}/secrets/MULTI`]: 'line1\nline2="quoted" ☃ 𝄞\n',
  [`${P}/secrets/AFTER_ROTATE`]: 'written-under-dek-2-Hn3',
  [`${D}/secrets/DEBUG`]: '1',
  [`${D}/secrets/EMPTY`]: '',
};
const API_KEY_V1 = 'sk_live_first_Qe19';
const DELETED = `${P}/secrets/TEMP`;
const DELETED_VALUE = 'short-lived-Jm4';

interface OldVault {
  commit: string;
  rootToken: string;
  ci: { token: string; id: string };
  revoked: { token: string; id: string };
  events: Ev[];
  headSeq: number;
  headHash: string;
}

const expectStatus = async (p: Promise<{ status: number; text: string }>, status: number, what: string) => {
  const r = await p;
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
};

/** What the previous release's users did: enough for 20+ events of many kinds. */
async function oldActivity(api: Api): Promise<Omit<OldVault, 'commit' | 'rootToken' | 'events' | 'headSeq' | 'headHash'>> {
  await seed(api, { api: { prod: {}, dev: { DEBUG: CURRENT[`${D}/secrets/DEBUG`], EMPTY: '' } } });
  for (const key of ['DB_URL', 'MULTI'])
    await expectStatus(api('PUT', `${P}/secrets/${key}`, { value: CURRENT[`${P}/secrets/${key}`] }), 200, `PUT ${key}`);
  await expectStatus(api('PUT', `${P}/secrets/API_KEY`, { value: API_KEY_V1 }), 200, 'PUT API_KEY v1');
  await expectStatus(api('PUT', `${P}/secrets/API_KEY`, { value: CURRENT[`${P}/secrets/API_KEY`], cas: 1 }), 200, 'PUT API_KEY v2');
  await expectStatus(api('PUT', DELETED, { value: DELETED_VALUE }), 200, 'PUT TEMP');
  await expectStatus(api('DELETE', DELETED), 200, 'DELETE TEMP');
  // The values above stay under data key 1; the next one is written under data key 2.
  await expectStatus(api('POST', '/v1/projects/api/rotate', {}), 200, 'rotate the data key');
  await expectStatus(api('PUT', `${P}/secrets/AFTER_ROTATE`, { value: CURRENT[`${P}/secrets/AFTER_ROTATE`] }), 200, 'PUT AFTER_ROTATE');

  await expectStatus(api('GET', `${P}/secrets`), 200, 'read all of prod');
  await expectStatus(api('GET', `${P}/keys`), 200, 'list prod');
  await expectStatus(api('GET', `${P}/secrets/API_KEY/versions`), 200, 'versions of API_KEY');
  await expectStatus(api('GET', `${P}/secrets/API_KEY?version=1`), 200, 'read API_KEY v1');

  const ci = await createToken({ api }, 'ci-prod-reader', ['read:api/prod']);
  const revoked = await createToken({ api }, 'dev-reader', ['read:api/dev']);
  await expectStatus(api('GET', `${P}/secrets/DB_URL`, undefined, ci.token), 200, 'scoped read');
  await expectStatus(api('GET', `${P}/secrets`, undefined, ci.token), 200, 'scoped read of all');
  await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, ci.token), 403, 'scoped read outside the scope');
  await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, revoked.token), 200, 'the dev reader before revocation');
  await expectStatus(api('DELETE', `/v1/tokens/${revoked.id}`), 200, 'revoke the dev reader');
  // One failed authentication only: it is recorded at once (a second one would leave a summary for the shutdown).
  await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, revoked.token), 401, 'the revoked token');
  return { ci, revoked };
}

/** The old chain head as the previous release's schema stores it (audit_head), read beside the stopped server. */
async function oldHeadRow(db: Knex): Promise<{ seq: number; hash: string }> {
  const r = await db('audit_head').where({ id: 1 }).first();
  assert.ok(r, "the previous release's audit_head row");
  return { seq: Number(r.seq), hash: Buffer.from(r.hash).toString('hex') };
}

describe('upgrade: a vault made by the previous release opens with this one', { skip: PREV_SKIP }, () => {
  let prev: { dir: string; commit: string };

  before(
    async () => {
      prev = previousRelease();
    },
    { timeout: 280_000 },
  );

  for (const backend of BACKENDS) {
    describe(`on ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, onBackend(backend), () => {
      let dataDir: string;
      let pg: { url: string; name: string; drop: () => Promise<void> } | null = null;
      let old: OldVault | null = null;
      let server: Listening | null = null;
      let upgradedEvents: Ev[] = [];
      /** Set once the upgraded vault was moved to unseal shares: every later start unseals with two of them. */
      let shares: string[] | null = null;
      const dbArgs = () => ['--data-dir', dataDir, '--listen', '127.0.0.1:0', ...(pg ? ['--database-url', pg.url] : [])];
      const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME });
      const side = () => openDb({ url: pg ? pg.url : `sqlite:${join(dataDir, 'hush.db')}` });
      const startNew = async () => {
        const s = await spawnServer(dbArgs());
        server = s;
        assert.equal(s.rootToken, null, 'the upgraded server opened the existing vault instead of initialising a new one');
        const api = apiFor(s.url, old!.rootToken);
        if (shares) {
          assert.equal((await api('GET', '/v1/sys/health')).status, 503, 'a vault moved to shares starts sealed');
          for (const share of shares.slice(0, 2)) await expectStatus(api('POST', '/v1/sys/unseal', { share }), 200, 'unseal');
        }
        return { s, api };
      };
      const stop = async () => {
        const s = server;
        server = null;
        if (s) assert.equal(await s.stop(), 0, `server exit: ${s.stderr().slice(-500)}`);
      };

      before(async () => {
        dataDir = join(tempDir('hush-upgrade-'), 'data');
        if (backend === 'postgres') pg = await freshPgDatabase();
      });
      after(async () => {
        const s = server;
        if (s) await s.kill9();
        await pg?.drop();
        if (dataDir) rmSync(join(dataDir, '..'), { recursive: true, force: true });
      });

      it('the previous release makes a vault whose single audit chain has 20+ events', async (t) => {
        const s = await spawnListening([join(prev.dir, 'dist', 'cli', 'main.js'), 'server', ...dbArgs()], { env: env() });
        server = s;
        assert.ok(s.rootToken, `the previous release printed a root token: ${s.stderr().slice(0, 500)}`);
        const api = apiFor(s.url, s.rootToken);
        const made = await oldActivity(api);
        const events = await allEvents({ api });
        const v = await verify({ api });
        assert.equal(v.ok, true, v.reason ?? '');
        assert.equal(v.checked, v.headSeq);
        assert.equal(v.headSeq, events.length);
        assert.ok(v.headHash && /^[0-9a-f]{64}$/.test(v.headHash));
        assert.ok(events.length >= 20, `the old chain has ${events.length} events`);
        assert.ok(
          events.every((e) => (e as Partial<Ev>).stream === undefined),
          'the previous release has no streams',
        );
        old = { ...made, commit: prev.commit, rootToken: s.rootToken, events, headSeq: v.headSeq, headHash: v.headHash };
        await stop();
        // Nothing was appended at shutdown: the head stored by the old schema is the one verify reported.
        const db = side();
        try {
          assert.deepEqual(await oldHeadRow(db), { seq: old.headSeq, hash: old.headHash });
        } finally {
          await db.destroy();
        }
        const actions = new Map<string, number>();
        for (const e of events) actions.set(e.action, (actions.get(e.action) ?? 0) + 1);
        t.diagnostic(`previous release ${PREVIOUS_RELEASE} (${prev.commit}) built in ${prev.dir}`);
        t.diagnostic(`old chain on ${backend}: ${events.length} events, head seq ${old.headSeq} hash ${old.headHash}`);
        t.diagnostic(`old events by action: ${[...actions].map(([a, n]) => `${a} ${n}`).join(', ')}`);
      });

      it('after the upgrade the old root and scoped tokens work, and the revoked one is still refused', async () => {
        assert.ok(old, 'the previous release made the vault');
        const { api } = await startNew();
        await expectStatus(api('GET', '/v1/tokens/self'), 200, 'the old root token');
        const ci = await api('GET', `${P}/secrets/DB_URL`, undefined, old.ci.token);
        assert.equal(ci.status, 200, ci.text);
        assert.equal(ci.body.value, CURRENT[`${P}/secrets/DB_URL`]);
        await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, old.ci.token), 403, 'the old scoped token outside its scope');
        await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, old.revoked.token), 401, 'the old revoked token');
        const list = await api('GET', '/v1/tokens');
        assert.equal(list.status, 200, list.text);
        const names = list.body.tokens.map((x: { name: string }) => x.name);
        assert.ok(names.includes('ci-prod-reader'), `tokens listed: ${names.join(', ')}`);
        assert.ok(!names.includes('dev-reader'), 'the revoked token is not listed as live');
      });

      it('after the upgrade every value reads back as written, old versions and the delete included', async () => {
        assert.ok(old && server, 'the upgraded server is running');
        const api = apiFor(server.url, old.rootToken);
        for (const [path, value] of Object.entries(CURRENT)) {
          const r = await api('GET', path);
          assert.equal(r.status, 200, `${path}: ${r.text}`);
          assert.equal(r.body.value, value, path);
        }
        const all = await api('GET', `${P}/secrets`);
        assert.equal(all.status, 200, all.text);
        const prodValues = Object.fromEntries(
          Object.entries(CURRENT)
            .filter(([p]) => p.startsWith(P))
            .map(([p, v]) => [p.slice(`${P}/secrets/`.length), v]),
        );
        assert.deepEqual(all.body.secrets, prodValues);
        const versions = await api('GET', `${P}/secrets/API_KEY/versions`);
        assert.equal(versions.status, 200, versions.text);
        assert.deepEqual(
          versions.body.versions.map((v: { version: number }) => v.version),
          [2, 1],
        );
        const v1 = await api('GET', `${P}/secrets/API_KEY?version=1`);
        assert.equal(v1.status, 200, v1.text);
        assert.equal(v1.body.value, API_KEY_V1);
        await expectStatus(api('GET', DELETED), 404, 'the deleted secret');
        const gone = await api('GET', `${DELETED}/versions`);
        assert.equal(gone.status, 200, gone.text);
        assert.equal(gone.body.current, null);
        assert.equal(gone.body.versions[0].deleted, true);
        const before = await api('GET', `${DELETED}?version=1`);
        assert.equal(before.body.value, DELETED_VALUE);
        // And the upgraded vault takes new writes beside the old ones.
        await expectStatus(api('PUT', `${P}/secrets/API_KEY`, { value: 'sk_live_third_Lp0', cas: 2 }), 200, 'a third version of API_KEY');
        assert.equal((await api('GET', `${P}/secrets/API_KEY?version=2`)).body.value, CURRENT[`${P}/secrets/API_KEY`]);
      });

      it('after the upgrade every old revision of an env is rebuilt (env history backfilled by the ' + 'migration)', async () => {
        assert.ok(old && server, 'the upgraded server is running');
        const api = apiFor(server.url, old.rootToken);
        // prod: seven single writes by the old release (DB_URL, MULTI, API_KEY v1, API_KEY v2, TEMP, delete TEMP, AFTER_ROTATE), then API_KEY v3 by this one.
        const h = await api('GET', `${P}/history`);
        assert.equal(h.status, 200, h.text);
        assert.equal(h.body.revision, 8);
        assert.deepEqual(
          h.body.revisions.map((r: { revision: number; changes: { key: string; action: string }[] }) => [
            r.revision,
            r.changes.map((c) => `${c.action} ${c.key}`).join(),
          ]),
          [
            [8, 'set API_KEY'],
            [7, 'set AFTER_ROTATE'],
            [6, 'deleted TEMP'],
            [5, 'set TEMP'],
            [4, 'set API_KEY'],
            [3, 'set API_KEY'],
            [2, 'set MULTI'],
            [1, 'set DB_URL'],
          ],
        );
        assert.ok(
          h.body.revisions.every((r: { actors: { name: string }[] }) => r.actors.map((a) => a.name).join() === 'root'),
          'the writer is named',
        );
        const at = async (path: string, rev: number) => {
          const r = await api('GET', `/v1/secret/data/${path}?version=${rev}`);
          assert.equal(r.status, 200, `${path}@${rev}: ${r.text}`);
          return r.body.data.data;
        };
        assert.deepEqual(await at('api/prod', 3), {
          API_KEY: API_KEY_V1,
          DB_URL: CURRENT[`${P}/secrets/DB_URL`],
          MULTI: CURRENT[`${P}/secrets/MULTI`],
        });
        assert.equal((await at('api/prod', 5)).TEMP, DELETED_VALUE);
        assert.equal((await at('api/prod', 6)).TEMP, undefined);
        // dev: one bulk write of two values by the old release: one revision.
        assert.deepEqual(await at('api/dev', 1), { DEBUG: CURRENT[`${D}/secrets/DEBUG`], EMPTY: '' });
        const d = await api('GET', `${P}/diff?fromRevision=2&toRevision=7`);
        assert.equal(d.status, 200, d.text);
        assert.deepEqual([d.body.added, d.body.removed, d.body.changed], [['AFTER_ROTATE', 'API_KEY'], [], []]);
      });

      it(
        'the upgraded vault has the secret lifecycle: policies on old secrets, generated secrets, ' + 'references to old values',
        async () => {
          assert.ok(old && server, 'the upgraded server is running');
          const api = apiFor(server.url, old.rootToken);
          const health = await api('GET', '/v1/sys/health', undefined, null);
          assert.equal(health.body.overdueSecrets, 0, 'migrations/20261208120000_secret_policies.ts: no policy on old secrets');
          const pol = await api('PUT', `${P}/secrets/DB_URL/policy`, { rotateEvery: '90d' });
          assert.equal(pol.status, 200, pol.text);
          assert.equal(pol.body.rotateEvery, '90d');
          await expectStatus(api('POST', `${P}/secrets/NEW_GEN/generate`, { charset: 'hex', length: 32 }), 200, 'a generated secret');
          await expectStatus(api('PUT', `${P}/secrets/REF`, { value: 'db=${DB_URL}' }), 200, 'a reference to an old value');
          assert.equal((await api('GET', `${P}/secrets/REF`)).body.value, `db=${CURRENT[`${P}/secrets/DB_URL`]}`);
          await expectStatus(api('DELETE', `${P}/secrets/REF`), 200, 'REF removed');
          await expectStatus(api('DELETE', `${P}/secrets/NEW_GEN`), 200, 'NEW_GEN removed');
          await expectStatus(api('PUT', `${P}/secrets/DB_URL/policy`, { rotateEvery: null }), 200, 'policy cleared');
        },
      );

      it('the old chain verifies as stream 0, every old event unchanged, and new events go to a new stream', async (t) => {
        assert.ok(old && server, 'the upgraded server is running');
        const api = apiFor(server.url, old.rootToken);
        const v = (await verify({ api })) as Verified;
        assert.equal(v.ok, true, v.reason ?? '');
        assert.ok(v.checked >= old.headSeq + 1, `checked ${v.checked} events, the old chain alone had ${old.headSeq}`);
        const anchored = await verify({ api }, `anchorSeq=${old.headSeq}&anchorHash=${old.headHash}`);
        assert.equal(anchored.ok, true, `the previous release's head as an anchor: ${anchored.reason}`);

        const events = await allEvents({ api });
        upgradedEvents = events;
        const stream0 = events.filter((e) => e.stream === 0);
        assert.equal(stream0.length, old.events.length, 'stream 0 holds exactly the old chain');
        for (const [i, was] of old.events.entries()) {
          const now = events[i];
          assert.equal(now.seq, was.seq, `event #${i + 1}: seq`);
          assert.equal(now.hash, was.hash, `event ${was.seq}: hash`);
          assert.equal(now.action, was.action, `event ${was.seq}: action`);
          assert.equal(now.stream, 0, `event ${was.seq}: stream`);
          assert.equal(now.streamSeq, was.seq, `event ${was.seq}: streamSeq`);
          const { stream: _s, streamSeq: _q, ...rest } = now;
          assert.deepEqual(rest, was, `event ${was.seq}: every field as the previous release listed it`);
        }
        const fresh = events.slice(old.events.length);
        assert.ok(fresh.length >= 2, 'the upgraded server recorded its start and the writes since');
        for (const e of fresh) {
          assert.notEqual(e.stream, 0, `new event ${e.seq} (${e.action}) is not in the closed stream 0`);
          assert.ok(e.seq > old.headSeq, `new event ${e.seq} comes after the old head ${old.headSeq}`);
        }
        assert.equal(fresh[0].action, 'server.start');
        assert.equal(fresh[0].streamSeq, 1);
        assertContiguous(events);
        assert.ok(v.streams >= 2, `${v.streams} streams`);
        t.diagnostic(
          `after the upgrade on ${backend}: ${events.length} events (${stream0.length} in stream 0, ` +
            `${fresh.length} new in stream(s) ${[...new Set(fresh.map((e) => e.stream))].join(', ')}), ` +
            `verify checked ${v.checked}, head seq ${v.headSeq}`,
        );
      });

      it('a restart after the upgrade (checkpoint written at shutdown) still verifies against the old ' + 'anchor', async () => {
        assert.ok(old && server, 'the upgraded server is running');
        await stop();
        const { api } = await startNew();
        const v = (await verify({ api }, `anchorSeq=${old.headSeq}&anchorHash=${old.headHash}`)) as Verified;
        assert.equal(v.ok, true, v.reason ?? '');
        assert.ok(v.checkpoint, 'the shutdown wrote a checkpoint');
        assert.ok(v.checked > upgradedEvents.length, `checked ${v.checked}`);
      });

      it(
        'the upgraded vault moves to a sealed start (operator rekey --seal shamir): tokens, values and ' + 'the old chain hold',
        async () => {
          assert.ok(old, 'the previous release made the vault');
          await stop();
          const r = spawnSync(
            process.execPath,
            [
              join(ROOT, 'dist', 'cli', 'main.js'),
              'operator',
              'rekey',
              '--seal',
              'shamir',
              '--shares',
              '3',
              '--threshold',
              '2',
              '--json',
              ...dbArgs(),
            ],
            { encoding: 'utf8' },
          );
          assert.equal(r.status, 0, r.stderr);
          const out = JSON.parse(r.stdout);
          assert.equal(out.from, 'file');
          assert.equal(out.shares.length, 3);
          assert.ok(out.removedKeyFile, 'the development master.key beside the database was removed');
          assert.ok(!existsSync(join(dataDir, 'master.key')));
          shares = out.shares;
          const { api } = await startNew();
          const ci = await api('GET', `${P}/secrets/DB_URL`, undefined, old.ci.token);
          assert.equal(ci.body?.value, CURRENT[`${P}/secrets/DB_URL`], ci.text);
          await expectStatus(api('GET', `${D}/secrets/DEBUG`, undefined, old.revoked.token), 401, 'the old revoked token');
          assert.equal((await api('GET', `${P}/secrets/API_KEY?version=1`)).body.value, API_KEY_V1);
          const v = await verify({ api }, `anchorSeq=${old.headSeq}&anchorHash=${old.headHash}`);
          assert.equal(v.ok, true, v.reason ?? '');
          const events = await allEvents({ api });
          for (const a of ['vault.rekey', 'vault.unseal'])
            assert.ok(
              events.some((e) => e.action === a),
              a,
            );
        },
      );

      it('an edited old event is named: the migrated stream 0 is really checked', async () => {
        assert.ok(old, 'the previous release made the vault');
        await stop();
        const k = old.events.find((e) => e.action === 'secret.write' && e.target.key === 'API_KEY' && e.target.version === 2)?.seq;
        assert.ok(k, 'the old event of the second API_KEY write');
        const db = side();
        try {
          const was = await db('audit_events').where({ seq: k }).first();
          assert.equal(Number(was.stream), 0);
          assert.notEqual(was.detail, '{"cas":7}');
          assert.equal(await db('audit_events').where({ seq: k }).update({ detail: '{"cas":7}' }), 1);
        } finally {
          await db.destroy();
        }
        const { api } = await startNew();
        const v = await verify({ api });
        assert.equal(v.ok, false);
        assert.equal(v.firstBadSeq, k, v.reason ?? '');
        assert.match(v.reason ?? '', new RegExp(`event ${k} was altered or forged`));
        assert.equal(v.checked, k - 1);
        await stop();
      });
    });
  }
});
