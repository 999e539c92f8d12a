/**
 * Sealed start (issue 15), on both engines, with real `hush` processes:
 * `operator init --seal shamir`, a server that starts sealed, unseal with
 * any 3 of 5 shares (and not 2), bad shares, a seal under load, a rekey from
 * 5/3 to 3/2, a passphrase seal, and a search for the share text in the
 * data dir, the logs and the audit log.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sodium from 'libsodium-wrappers-sumo';
import { FULL_CLI, runHush, spawnServer, waitFor, type Listening } from '../helpers/cli.js';
import { onPty, PTY_SKIP } from '../helpers/pty.js';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { BACKENDS, freshPgDatabase, onBackend, pgAdmin } from '../helpers/server.js';

type Api = (method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number; body: any; text: string }>;

function apiFor(url: string, rootToken: string | null): Api {
  return async (method, path, body, token) => {
    const headers: Record<string, string> = {};
    const tok = token ?? rootToken;
    if (tok) headers.authorization = `Bearer ${tok}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: res.status, body: parsed, text };
  };
}

interface Vault {
  dir: string;
  storage: string[];
  init: { rootToken: string; shares: string[]; threshold: number };
  server: Listening | null;
  api: Api;
  logs: string[];
  start(): Promise<Api>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

const dirs: string[] = [];
const drops: (() => Promise<void>)[] = [];
after(async () => {
  for (const d of drops) await d().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function storageArgs(backend: 'sqlite' | 'postgres', dir: string): Promise<string[]> {
  if (backend === 'sqlite') return ['--data-dir', join(dir, 'data')];
  const db = (await freshPgDatabase())!;
  drops.push(db.drop);
  return ['--database-url', db.url, '--data-dir', join(dir, 'data')];
}

async function newVault(
  backend: 'sqlite' | 'postgres',
  initArgs = ['--seal', 'shamir', '--shares', '5', '--threshold', '3'],
): Promise<Vault> {
  const dir = mkdtempSync(join(tmpdir(), 'hush-seal-'));
  dirs.push(dir);
  const storage = await storageArgs(backend, dir);
  const r = await runHush(['operator', 'init', ...initArgs, '--json', ...storage]);
  assert.equal(r.code, 0, r.stderr);
  const init = JSON.parse(r.stdout);
  const v: Vault = {
    dir,
    storage,
    init,
    server: null,
    logs: [],
    api: apiFor('http://127.0.0.1:1', null),
    async start() {
      v.server = await spawnServer(
        [...storage, '--listen', '127.0.0.1:0', '--rate-limit', '100000'],
        {},
        { onExit: (o, e) => v.logs.push(o, e) },
      );
      v.api = apiFor(v.server.url, init.rootToken);
      return v.api;
    },
    async stop() {
      if (v.server) assert.equal(await v.server.stop(), 0);
      v.server = null;
    },
    async close() {
      if (v.server) await v.server.kill9();
      v.server = null;
    },
  };
  return v;
}

async function unsealWith(api: Api, shares: string[]): Promise<any> {
  let last: any = null;
  for (const share of shares) {
    const r = await api('POST', '/v1/sys/unseal', { share });
    assert.equal(r.status, 200, r.text);
    last = r.body;
  }
  return last;
}

for (const backend of BACKENDS) {
  describe(`sealed start with unseal shares (${backend})`, onBackend(backend), () => {
    it('init prints 5 shares once and writes no key; a restart is sealed; 2 of 5 do not open it, any 3 ' + 'of 5 do', async (t) => {
      const v = await newVault(backend);
      t.after(() => v.close());
      assert.equal(v.init.shares.length, 5);
      assert.equal(v.init.threshold, 3);
      assert.equal(new Set(v.init.shares).size, 5);
      assert.deepEqual(
        (existsSync(join(v.dir, 'data')) ? readdirSync(join(v.dir, 'data')) : []).filter((f) => f.includes('key')),
        [],
        'no key file in the data dir',
      );

      let api = await v.start();
      const h = await api('GET', '/v1/sys/health');
      assert.equal(h.status, 503);
      assert.equal(h.body.sealed, true);
      assert.equal(h.body.progress, 0);
      assert.equal(h.body.threshold, 3);
      const p = await api('GET', '/v1/projects');
      assert.equal(p.status, 503);
      assert.equal(p.body.error.code, 'sealed');
      // Sealed: even a valid root token gets no further than the seal.
      assert.equal((await api('POST', '/v1/projects', { name: 'api' })).body.error.code, 'sealed');

      const two = await unsealWith(api, [v.init.shares[0], v.init.shares[1]]);
      assert.deepEqual(two, { sealed: true, type: 'shamir', progress: 2, threshold: 3 });
      assert.equal((await api('GET', '/v1/projects')).status, 503, '2 of 5 shares do not open the vault');
      assert.equal((await api('POST', '/v1/sys/unseal', { reset: true })).body.progress, 0);

      const combos = [
        [0, 1, 2],
        [2, 3, 4],
        [4, 0, 3],
        [1, 3, 4],
      ];
      let first = true;
      for (const combo of combos) {
        const opened = await unsealWith(
          api,
          combo.map((i) => v.init.shares[i]),
        );
        assert.equal(opened.sealed, false, `shares ${combo} open the vault`);
        assert.equal((await api('GET', '/v1/sys/health')).status, 200);
        if (first) {
          assert.equal((await api('POST', '/v1/projects', { name: 'api' })).status, 201);
          assert.equal((await api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
          assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/DB_URL', { value: 'postgres://kept' })).status, 200);
          first = false;
        }
        const g = await api('GET', '/v1/projects/api/envs/prod/secrets');
        assert.equal(g.status, 200, g.text);
        assert.equal(g.body.secrets.DB_URL, 'postgres://kept');
        // Every other combination starts from a restart, which is sealed again.
        await v.stop();
        api = await v.start();
        assert.equal((await api('GET', '/v1/projects/api/envs/prod/secrets')).body.error.code, 'sealed');
      }

      // The audit log has the attempts and the unseals, and still verifies.
      await unsealWith(api, v.init.shares.slice(0, 3));
      const events = await api('GET', '/v1/audit?limit=500');
      assert.equal(events.status, 200);
      const actions = events.body.events.map((e: any) => e.action);
      for (const a of ['vault.init', 'vault.unseal_attempt', 'vault.unseal']) assert.ok(actions.includes(a), a);
      const verify = await api('GET', '/v1/audit/verify');
      assert.equal(verify.body.ok, true, verify.text);
      const text = JSON.stringify(events.body) + v.server!.stdout() + v.server!.stderr() + v.logs.join('');
      for (const s of v.init.shares) {
        assert.ok(!text.includes(s), 'no share in the audit log or the server output');
        assert.ok(!text.includes(s.slice(15, 45)), 'no part of a share either');
      }
      await v.stop();
      if (backend === 'sqlite') {
        for (const f of readdirSync(join(v.dir, 'data'))) {
          const bytes = readFileSync(join(v.dir, 'data', f));
          for (const s of v.init.shares) assert.equal(bytes.indexOf(s.slice(11)), -1, `share text in ${f}`);
        }
      } else {
        // The whole database, as pg_dump writes it (schema and data).
        const url = v.storage[v.storage.indexOf('--database-url') + 1];
        let dump: string;
        try {
          dump = execFileSync('pg_dump', ['--no-owner', url], { maxBuffer: 256 * 1024 * 1024 }).toString('utf8');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          // No pg_dump on this machine: every row of every table, as text.
          const tables = (await pgAdmin("select tablename from pg_tables where schemaname = 'public'", [], url)).map(
            (r) => r.tablename as string,
          );
          dump =
            'audit_events ' +
            (await Promise.all(tables.map(async (tb) => JSON.stringify(await pgAdmin(`select * from "${tb}"`, [], url))))).join('\n');
        }
        assert.match(dump, /audit_events/);
        for (const s of v.init.shares) assert.ok(!dump.includes(s.slice(11)), 'share text in the PostgreSQL dump');
        t.diagnostic(`pg_dump: ${dump.length} bytes searched`);
      }
    });

    it(
      'short, garbled, duplicate and foreign shares are refused and change nothing but the progress; a ' + 'forged set resets it',
      async (t) => {
        const v = await newVault(backend);
        const other = await newVault(backend);
        t.after(async () => {
          await v.close();
          await other.close();
        });
        const api = await v.start();
        const [s0, s1] = v.init.shares;
        const bad = async (body: unknown, code: string, progress: number) => {
          const r = await api('POST', '/v1/sys/unseal', body);
          assert.equal(r.status, 400, r.text);
          assert.equal(r.body.error.code, code, r.text);
          for (const s of v.init.shares) assert.ok(!r.text.includes(s.slice(11, 40)), 'the error never echoes the share');
          assert.equal((await api('GET', '/v1/sys/seal-status')).body.progress, progress);
        };
        assert.equal((await unsealWith(api, [s0])).progress, 1);
        await bad({ share: s1.slice(0, 30) }, 'invalid_share', 1);
        const flipped = s1.slice(0, 20) + (s1[20] === 'A' ? 'B' : 'A') + s1.slice(21);
        await bad({ share: flipped }, 'invalid_share', 1);
        await bad({ share: s0 }, 'invalid_share', 1);
        await bad({ share: other.init.shares[0] }, 'invalid_share', 1);
        await bad({ share: 'not a share at all' }, 'invalid_share', 1);
        // One stray character at the end: base64url decoding would drop it silently.
        await bad({ share: s1 + 'Z' }, 'invalid_share', 1);
        const pgp = await api('POST', '/v1/sys/unseal', {
          share: `-----BEGIN PGP MESSAGE-----\n\nhQEMA${'x'.repeat(600)}\n-----END PGP MESSAGE-----\n`,
        });
        assert.equal(pgp.body.error.code, 'invalid_share');
        assert.match(pgp.body.error.message, /gpg --decrypt/);
        await bad({ passphrase: 'a passphrase to a shamir vault' }, 'invalid_request', 1);
        await bad({}, 'invalid_request', 1);
        await bad({ share: s1, passphrase: 'x' }, 'invalid_request', 1);

        // A share that passes the format and checksum but is not of this vault's polynomial:
        // accepted alone (it cannot be told apart), and the set it completes is refused and reset.
        await sodium.ready;
        const raw = Buffer.from(s1.slice('hush-share-'.length), 'base64url');
        raw[10] ^= 0xff;
        const payload = raw.subarray(0, raw.length - 4);
        Buffer.from(sodium.crypto_generichash(4, payload, sodium.from_string('hush-share-check'))).copy(raw, raw.length - 4);
        const forged = 'hush-share-' + raw.toString('base64url');
        assert.equal((await unsealWith(api, [forged])).progress, 2);
        await bad({ share: v.init.shares[2] }, 'unseal_failed', 0);
        assert.equal((await api('GET', '/v1/sys/health')).status, 503);

        // Still opens with a good set afterwards.
        assert.equal((await unsealWith(api, v.init.shares.slice(2, 5))).sealed, false);
        const events = await api('GET', '/v1/audit?action=vault.unseal_attempt&limit=100');
        const outcomes = events.body.events.map((e: any) => e.outcome);
        assert.ok(outcomes.filter((o: string) => o === 'error').length >= 6, JSON.stringify(outcomes));
        assert.ok(events.body.events.every((e: any) => e.ip === '127.0.0.1'));
        for (const s of [...v.init.shares, forged]) assert.ok(!events.text.includes(s.slice(11, 40)));
      },
    );

    it('a seal under load: no read succeeds once the seal call has returned', async (t) => {
      const v = await newVault(backend);
      t.after(() => v.close());
      const api = await v.start();
      await unsealWith(api, v.init.shares.slice(0, 3));
      assert.equal((await api('POST', '/v1/projects', { name: 'api' })).status, 201);
      assert.equal((await api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
      const set: Record<string, string> = {};
      for (let i = 0; i < 20; i++) set[`K${i}`] = `value-${i}`;
      assert.equal((await api('PATCH', '/v1/projects/api/envs/prod/secrets', { set })).status, 200);

      let sealedAt = 0;
      let stop = false;
      const results: { status: number; doneAt: number }[] = [];
      const worker = async () => {
        while (!stop) {
          const r = await api('GET', '/v1/projects/api/envs/prod/secrets').catch(() => ({ status: 0 }));
          results.push({ status: r.status, doneAt: performance.now() });
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      await waitFor(() => results.filter((r) => r.status === 200).length >= 200, '200 successful reads before the seal');
      const s = await api('POST', '/v1/sys/seal', {});
      sealedAt = performance.now();
      assert.equal(s.status, 200, s.text);
      assert.equal(s.body.sealed, true);
      await waitFor(() => results.filter((r) => r.doneAt > sealedAt).length >= 200, '200 reads after the seal');
      stop = true;
      await Promise.all(workers);
      const before = results.filter((r) => r.doneAt <= sealedAt);
      const afterSeal = results.filter((r) => r.doneAt > sealedAt);
      t.diagnostic(
        `reads before the seal returned: ${before.length} ` +
          `(${before.filter((r) => r.status === 200).length} ok); after: ${afterSeal.length}, statuses ` +
          `${[...new Set(afterSeal.map((r) => r.status))]}`,
      );
      assert.equal(afterSeal.filter((r) => r.status === 200).length, 0, '0 successful reads after the seal call returned');
      assert.ok(afterSeal.every((r) => r.status === 503));
      const h = await api('GET', '/v1/sys/health');
      assert.equal(h.body.sealed, true);
      // The seal is audited (by root), and the chain verifies once unsealed again.
      await unsealWith(api, v.init.shares.slice(2, 5));
      const ev = await api('GET', '/v1/audit?action=vault.seal');
      assert.equal(ev.body.events.length, 1);
      assert.equal(ev.body.events[0].actor.name ?? ev.body.events[0].actorName ?? 'root', 'root');
      assert.equal((await api('GET', '/v1/audit/verify')).body.ok, true);
    });

    it('rekey from 5/3 to 3/2: the new shares open it, the old ones are refused; no data re-encrypted', async (t) => {
      const v = await newVault(backend);
      t.after(() => v.close());
      let api = await v.start();
      await unsealWith(api, v.init.shares.slice(0, 3));
      assert.equal((await api('POST', '/v1/projects', { name: 'api' })).status, 201);
      assert.equal((await api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
      assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/K', { value: 'before-rekey' })).status, 200);
      const files = [1, 3, 4].map((i) => {
        const f = join(v.dir, `share-${i}`);
        writeFileSync(f, v.init.shares[i] + '\n', { mode: 0o600 });
        return f;
      });

      // A rekey needs a quorum of the current set.
      const short = await runHush([
        'operator',
        'rekey',
        '--shares',
        '3',
        '--threshold',
        '2',
        '--json',
        '--share-file',
        files[0],
        '--share-file',
        files[1],
        ...v.storage,
      ]);
      assert.equal(short.code, 2, short.stderr);
      assert.match(short.stderr, /needs 3/);
      const r = await runHush([
        'operator',
        'rekey',
        '--shares',
        '3',
        '--threshold',
        '2',
        '--json',
        ...files.flatMap((f) => ['--share-file', f]),
        ...v.storage,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.shares.length, 3);
      assert.equal(out.threshold, 2);
      // The running server keeps serving through a rekey; sealed afterwards, it asks for the new set.
      assert.equal((await api('GET', '/v1/projects/api/envs/prod/secrets/K')).body.value, 'before-rekey');
      assert.equal((await api('POST', '/v1/sys/seal')).status, 200, 'a seal with no body');
      assert.deepEqual((await api('GET', '/v1/sys/seal-status')).body, { sealed: true, type: 'shamir', progress: 0, threshold: 2 });

      await v.stop();
      api = await v.start();
      const old = await api('POST', '/v1/sys/unseal', { share: v.init.shares[0] });
      assert.equal(old.status, 400);
      assert.equal(old.body.error.code, 'invalid_share');
      assert.equal((await unsealWith(api, [out.shares[2]])).progress, 1);
      assert.equal((await unsealWith(api, [out.shares[0]])).sealed, false);
      assert.equal((await api('GET', '/v1/projects/api/envs/prod/secrets/K')).body.value, 'before-rekey');
      const ev = await api('GET', '/v1/audit?action=vault.rekey');
      assert.equal(ev.body.events.length, 1);
      assert.equal((await api('GET', '/v1/audit/verify')).body.ok, true);
    });

    it('parallel unseal submissions open the vault once; held attempts keep their own request id and ' + 'time', async (t) => {
      const v = await newVault(backend, ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
      t.after(() => v.close());
      const api = await v.start();
      const attempt = await api('POST', '/v1/sys/unseal', { share: 'hush-share-nope' }, undefined);
      assert.equal(attempt.status, 400);
      const reqId = attempt.body.error.requestId;
      for (let round = 0; round < 3; round++) {
        const [a, b, c] = v.init.shares;
        const rs = await Promise.all([a, b, c, a, b, c].map((share) => api('POST', '/v1/sys/unseal', { share })));
        assert.ok(
          rs.every((r) => r.status === 200 || r.status === 400),
          rs.map((r) => r.status).join(','),
        );
        assert.equal((await api('GET', '/v1/sys/health')).status, 200);
        const unseals = (await api('GET', '/v1/audit?action=vault.unseal&limit=100')).body.events;
        assert.equal(unseals.length, round + 1, `round ${round}: one vault.unseal per unseal, however many complete sets arrived`);
        assert.equal((await api('POST', '/v1/sys/seal', {})).status, 200);
      }
      // A seal that arrives while the completing share is still being received waits for it, and seals what it opens.
      assert.equal((await unsealWith(api, [v.init.shares[0]])).progress, 1);
      const u = new URL(v.server!.url);
      const sock = connect(Number(u.port), u.hostname);
      await new Promise<void>((r) => sock.once('connect', () => r()));
      const body = JSON.stringify({ share: v.init.shares[1] });
      let raw = '';
      sock.on('data', (d: Buffer) => {
        raw += d.toString();
      });
      sock.write(
        `POST /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ` +
          `${Buffer.byteLength(body)}\r\n\r\n`,
      );
      await new Promise((r) => setTimeout(r, 200)); // the headers are in: the server has seen the submission start
      const sealing = api('POST', '/v1/sys/seal', {});
      await new Promise((r) => setTimeout(r, 200));
      sock.write(body);
      const sealed = await sealing;
      await waitFor(() => raw.includes('\r\n\r\n{'), 'the unseal answer');
      sock.destroy();
      assert.match(raw, /^HTTP\/1\.1 200/);
      assert.equal(sealed.status, 200, sealed.text);
      assert.equal(sealed.body.already, false, 'the seal applied to what the unseal opened');
      assert.equal((await api('GET', '/v1/sys/health')).status, 503, 'it ends sealed');
      await unsealWith(api, v.init.shares.slice(0, 2));
      const held = (await api('GET', '/v1/audit?action=vault.unseal_attempt&outcome=error&limit=100')).body.events;
      const mine = held.find((e: any) => e.requestId === reqId);
      assert.ok(mine, 'the refused attempt is recorded under its own request id');
      assert.equal(mine.ip, '127.0.0.1');
      assert.ok(Date.parse(mine.detail.at) <= Date.parse(mine.ts));
    });

    it('a passphrase seal: a wrong passphrase is refused, the right one opens it', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'hush-pass-'));
      dirs.push(dir);
      const pf = join(dir, 'pass');
      writeFileSync(pf, 'correct horse battery staple\n', { mode: 0o600 });
      const v = await newVault(backend, ['--seal', 'passphrase', '--passphrase-file', pf]);
      t.after(() => v.close());
      assert.equal(v.init.shares, undefined);
      const api = await v.start();
      const h = await api('GET', '/v1/sys/health');
      assert.equal(h.status, 503);
      assert.equal(h.body.seal, 'passphrase');
      const wrong = await api('POST', '/v1/sys/unseal', { passphrase: 'correct horse battery stapler' });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error.code, 'unseal_failed');
      assert.ok(!wrong.text.includes('stapler'));
      assert.equal((await api('POST', '/v1/sys/unseal', { share: 'hush-share-x' })).body.error.code, 'invalid_request');
      // A flood of wrong passphrases is queued at most 8 deep: the rest get 429 at once (each costs an Argon2id run).
      // 20, not 12: on a loaded machine 12 requests could arrive so spread out that the queue never filled
      // (and at most 30 calls a minute pass the route's rate limit, retries below included).
      const flood = await Promise.all(
        Array.from({ length: 20 }, () => api('POST', '/v1/sys/unseal', { passphrase: 'wrong passphrase, many times' })),
      );
      const codes = flood.map((r) => r.status);
      assert.ok(
        codes.every((c) => c === 400 || c === 429),
        codes.join(','),
      );
      assert.ok(codes.includes(429), `some were turned away: ${codes.join(',')}`);
      // The right passphrase gets through once the bucket has refilled (a second or so): the operator retries.
      let ok = await api('POST', '/v1/sys/unseal', { passphrase: 'correct horse battery staple' });
      for (let i = 0; i < 8 && ok.status === 429; i++) {
        await new Promise((r) => setTimeout(r, 700)); // the unseal route also allows only 30 calls a minute per address
        ok = await api('POST', '/v1/sys/unseal', { passphrase: 'correct horse battery staple' });
      }
      assert.equal(ok.body.sealed, false, ok.text);
      assert.equal((await api('GET', '/v1/projects')).status, 200);
      assert.ok(!(v.server!.stderr() + v.server!.stdout()).includes('battery'), 'no passphrase in the log');
    });
  });
}

describe('a sealed vault: master-key rotation, and unseal typed at a terminal', () => {
  it('rotate-master wraps the new master key under the same unseal key: the same shares open it after ' + 'a restart', async (t) => {
    const v = await newVault('sqlite', ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
    t.after(() => v.close());
    let api = await v.start();
    await unsealWith(api, v.init.shares.slice(0, 2));
    assert.equal((await api('POST', '/v1/projects', { name: 'api' })).status, 201);
    assert.equal((await api('POST', '/v1/projects/api/envs', { name: 'prod' })).status, 201);
    assert.equal((await api('PUT', '/v1/projects/api/envs/prod/secrets/K', { value: 'kept-through-rotation' })).status, 200);
    const newKey = randomBytes(32).toString('base64');
    const r = await api('POST', '/v1/sys/rotate-master', { newKey });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.unchanged, false);
    assert.equal((await api('GET', '/v1/projects/api/envs/prod/secrets/K')).body.value, 'kept-through-rotation');
    await v.stop();
    api = await v.start();
    await unsealWith(api, v.init.shares.slice(1, 3));
    assert.equal((await api('GET', '/v1/projects/api/envs/prod/secrets/K')).body.value, 'kept-through-rotation');
    assert.equal((await api('GET', '/v1/audit/verify')).body.ok, true);
  });

  it(
    'the CLI: shares on stdin, seal twice, a malformed HUSH_TOKEN ignored where no token is needed, ' + 'rotate-master with no key file',
    async (t) => {
      const v = await newVault('sqlite', ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
      t.after(() => v.close());
      const api = await v.start();
      const addr = ['--addr', v.server!.url];
      const bad = { HUSH_TOKEN: 'hush_not-a-real-token' };
      const u = await runHush(['operator', 'unseal', ...addr], { input: `${v.init.shares[1]}\n${v.init.shares[2]}\n`, env: bad });
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /Unsealed/);
      assert.equal((await runHush(['operator', 'seal-status', ...addr], { env: bad })).code, 0);
      const root = { HUSH_TOKEN: v.init.rootToken };
      // A sealed vault rotates with a key made on the server; a key file is refused.
      const f = join(v.dir, 'new.key');
      const refused = await runHush(['keys', 'rotate-master', '--new-key-file', f, '--generate', ...addr], { env: root });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /without --new-key-file/);
      const rot = await runHush(['keys', 'rotate-master', '--json', ...addr], { env: root });
      assert.equal(rot.code, 0, rot.stderr);
      assert.equal(JSON.parse(rot.stdout).unchanged, false);
      const one = await runHush(['operator', 'seal', ...addr], { env: root });
      assert.equal(one.code, 0, one.stderr);
      const two = await runHush(['operator', 'seal', ...addr], { env: root });
      assert.equal(two.code, 0, two.stderr);
      assert.match(two.stdout, /already sealed/);
      const all = await runHush(['operator', 'seal', '--all', ...addr], { env: root });
      assert.equal(all.code, 7);
      assert.match(all.stderr, /send it to a server that is unsealed/);
      // The rotated key is under the same unseal key: the same shares open it after a restart.
      await v.stop();
      const again = await v.start();
      await unsealWith(again, v.init.shares.slice(0, 2));
      assert.equal((await again('GET', '/v1/audit/verify')).body.ok, true);
      void api;
    },
  );

  it('a backup streaming when the seal comes is cut: no more of it arrives after the seal call ' + 'returned', async (t) => {
    const v = await newVault('sqlite', ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
    t.after(() => v.close());
    const api = await v.start();
    await unsealWith(api, v.init.shares.slice(0, 2));
    assert.equal((await api('POST', '/v1/projects', { name: 'big' })).status, 201);
    // 16 MB of values, in 20 envs (an env holds at most --max-env-bytes, 2 MiB by default).
    for (let b = 0; b < 20; b++) {
      assert.equal((await api('POST', '/v1/projects/big/envs', { name: `prod${b}` })).status, 201);
      const set: Record<string, string> = {};
      for (let i = 0; i < 100; i++) set[`K${b}_${i}`] = randomBytes(6000).toString('base64');
      assert.equal((await api('PATCH', `/v1/projects/big/envs/prod${b}/secrets`, { set })).status, 200);
    }
    const res = await fetch(`${v.server!.url}/v1/backups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${v.init.rootToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ passphrase: 'a passphrase for this backup' }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let before = 0;
    while (before < 256 * 1024) before += (await reader.read()).value?.byteLength ?? 0;
    // The reader pauses; the server has far more to send than the socket buffers hold (~16 MB).
    const sealed = await api('POST', '/v1/sys/seal', {});
    assert.equal(sealed.status, 200);
    let afterSeal = 0;
    let ended: 'cut' | 'complete' = 'complete';
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        afterSeal += r.value.byteLength;
      }
    } catch {
      ended = 'cut';
    }
    t.diagnostic(
      `backup bytes read: ${before} before the seal, ${afterSeal} after it (what the socket buffers ` + `held), ended: ${ended}`,
    );
    assert.equal(ended, 'cut', 'the download was cut, not completed');
    assert.ok(afterSeal < 12 * 1024 * 1024, `the rest of the ~16 MB backup did not arrive: ${afterSeal} bytes`);
  });

  it('init and rekey refuse bad input before they write anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hush-seal-bad-'));
    dirs.push(dir);
    const pf = join(dir, 'short');
    writeFileSync(pf, 'too short\n', { mode: 0o600 });
    const init = await runHush(['operator', 'init', '--seal', 'passphrase', '--passphrase-file', pf, '--data-dir', join(dir, 'a')]);
    assert.equal(init.code, 2, init.stderr);
    assert.match(init.stderr, /at least 12 characters/);
    assert.ok(!existsSync(join(dir, 'a')), 'no data dir was made');
    const rekey = await runHush(['operator', 'rekey', '--shares', '3', '--threshold', '2', '--data-dir', join(dir, 'nowhere')]);
    assert.notEqual(rekey.code, 0);
    assert.match(rekey.stderr, /no vault in/);
    assert.ok(!existsSync(join(dir, 'nowhere')), 'no data dir was made');
    const nums = await runHush(['operator', 'init', '--seal', 'shamir', '--shares', '2', '--threshold', '3', '--data-dir', join(dir, 'b')]);
    assert.equal(nums.code, 2);
    assert.ok(!existsSync(join(dir, 'b')));
  });

  it('unseal is rate-limited per address: 30 a minute, then 429 even for a good share', async (t) => {
    const v = await newVault('sqlite', ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
    t.after(() => v.close());
    const api = await v.start();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await api('POST', '/v1/sys/unseal', { share: `hush-share-guess${i}` })).status);
    assert.deepEqual([...new Set(statuses)], [400]);
    const limited = await api('POST', '/v1/sys/unseal', { share: v.init.shares[0] });
    assert.equal(limited.status, 429, limited.text);
    assert.equal(limited.body.error.code, 'rate_limited');
    assert.equal((await api('GET', '/v1/sys/seal-status')).body.progress, 0, 'the limited share was not taken');
    // Health and seal status are not limited, so a load balancer keeps seeing the node.
    assert.equal((await api('GET', '/v1/sys/health')).status, 503);
  });

  it('hush operator unseal prompts for a share without echoing it', { skip: PTY_SKIP }, async (t) => {
    const v = await newVault('sqlite', ['--seal', 'shamir', '--shares', '3', '--threshold', '2']);
    t.after(() => v.close());
    const api = await v.start();
    const env = { PATH: process.env.PATH, HOME: v.dir, HUSH_ADDR: v.server!.url };
    const run = (share: string) =>
      onPty([process.execPath, FULL_CLI, 'operator', 'unseal'], [{ when: '(not echoed):', send: share + '\r' }], env);
    const first = await run(v.init.shares[2]);
    assert.equal(first.code, 0, first.screen);
    assert.match(first.screen, /Unseal share 1 of 2/);
    assert.match(first.screen, /Sealed: 1 of 2 unseal shares given/);
    assert.ok(!first.screen.includes(v.init.shares[2].slice(11)), 'the share is not echoed');
    const second = await run(v.init.shares[0]);
    assert.equal(second.code, 0, second.screen);
    assert.match(second.screen, /Unsealed/);
    assert.ok(!second.screen.includes(v.init.shares[0].slice(11)));
    assert.equal((await api('GET', '/v1/projects')).status, 200);
    // Without a terminal and without --share-file: one line, exit 2.
    const noTty = await runHush(['operator', 'seal-status', '--addr', v.server!.url]);
    assert.match(noTty.stdout, /Unsealed/);
  });
});

describe('seal on a file-sealed vault (the default)', () => {
  it('operator seal drops the keys; unseal says restart; a restart opens it again', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hush-fileseal-'));
    dirs.push(dir);
    const s = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    t.after(() => s.kill9());
    const api = apiFor(s.url, s.rootToken);
    assert.equal((await api('GET', '/v1/projects')).status, 200);
    const cli = await runHush(['operator', 'seal', '--addr', s.url], { env: { HUSH_TOKEN: s.rootToken! } });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal((await api('GET', '/v1/projects')).body.error.code, 'sealed');
    const u = await runHush(['operator', 'unseal', '--addr', s.url]);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /restart the server/);
    assert.equal(await s.stop(), 0);
    const again = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    t.after(() => again.kill9());
    assert.equal((await apiFor(again.url, s.rootToken)('GET', '/v1/projects')).status, 200);
    assert.equal(await again.stop(), 0);
    // And `operator rekey` moves it to shares, removing the master.key beside the database.
    const r = await runHush([
      'operator',
      'rekey',
      '--seal',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--json',
      '--data-dir',
      join(dir, 'data'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.from, 'file');
    assert.match(out.removedKeyFile, /master\.key$/);
    assert.deepEqual(
      readdirSync(join(dir, 'data')).filter((f) => f.includes('key')),
      [],
    );
    const sealed = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    t.after(() => sealed.kill9());
    const sapi = apiFor(sealed.url, s.rootToken);
    assert.equal((await sapi('GET', '/v1/sys/health')).status, 503);
    for (const share of out.shares.slice(1)) assert.equal((await sapi('POST', '/v1/sys/unseal', { share })).status, 200);
    assert.equal((await sapi('GET', '/v1/projects')).status, 200);
    assert.equal((await sapi('GET', '/v1/audit/verify')).body.ok, true);
  });
});
