/**
 * Issue 21, outside review, item 1: pipelined slow readers. One client with a
 * read token opened 50 connections, sent 20 pipelined GETs of a 1.87 MB env
 * on each, and never read a byte: Node parsed every request of a read at
 * once and ran all their handlers, queueing the answers in memory (RSS 125 MB
 * to 2.07 GB in 5 s). These tests repeat it against a real server process
 * and read its RSS from /proc; no timing is asserted.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/cli.js';
import { freshPgDatabase, tempDir } from '../helpers/server.js';
import { PROC_SKIP } from '../helpers/preconditions.js';
import { procStatus } from '../helpers/memory.js';
import { BACKENDS, onBackend } from '../helpers/server.js';
import { call, masterKeyFile, NO_LIMITS, sleep, spawnHush, type Spawned } from './support.js';

const MB = 1024 * 1024;
/** 31 values of 60,000 bytes: 1.86 MB of values, under --max-env-bytes (2 MiB) and --max-value-bytes (64 KiB). */
const VALUES = 31;
const VALUE_BYTES = 60_000;
const ENV = '/v1/projects/dos/envs/big/secrets';

/** A connection that sends `text` and reads nothing until `drain()` is called. */
interface Reader {
  sock: Socket;
  got: Buffer[];
  closed: boolean;
  drain(): void;
}
function slowReader(url: string, text: string): Promise<Reader> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname, port: Number(u.port) });
    const r: Reader = {
      sock,
      got: [],
      closed: false,
      drain() {
        sock.on('data', (d) => r.got.push(d));
        sock.resume();
      },
    };
    sock.pause();
    sock.on('error', () => undefined);
    sock.on('close', () => {
      r.closed = true;
    });
    sock.once('connect', () => {
      sock.write(text);
      resolve(r);
    });
    sock.once('error', reject);
  });
}

/** Statuses and error codes of the HTTP/1.1 responses in `raw`, in order (bodies by Content-Length). */
function responses(raw: Buffer): { status: number; code: string | null; retryAfter: string | null }[] {
  const out: { status: number; code: string | null; retryAfter: string | null }[] = [];
  let i = 0;
  while (i < raw.length) {
    const end = raw.indexOf('\r\n\r\n', i);
    if (end === -1) break;
    const head = raw.subarray(i, end).toString('latin1');
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (end + 4 + len > raw.length) break;
    const body = raw.subarray(end + 4, end + 4 + len).toString('utf8');
    let code: string | null = null;
    if (!head.startsWith('HTTP/1.1 200'))
      try {
        code = JSON.parse(body).error?.code ?? null;
      } catch {
        /* not JSON */
      }
    out.push({ status: Number(head.slice(9, 12)), code, retryAfter: /\r\nretry-after: *(\S+)/i.exec(head)?.[1] ?? null });
    i = end + 4 + len;
  }
  return out;
}

const completed = (s: Spawned) => (s.stdout().match(/"request completed"/g) ?? []).length;
const incoming = (s: Spawned) => (s.stdout().match(/"incoming request"/g) ?? []).length;

/** Samples the server's RSS until it has seen `atLeast` requests and then nothing new for a while; returns the highest reading. */
async function peakRssWhile(s: Spawned, atLeast: number): Promise<number> {
  const pid = s.child.pid!;
  let peak = 0;
  let last = -1;
  let still = 0;
  // Settled: the request count has not moved over 20 samples (the old code took 5 s to reach 2 GB; this runs until it stops growing).
  while (still < 20 || incoming(s) < atLeast) {
    peak = Math.max(peak, procStatus(pid, 'VmRSS'));
    const n = incoming(s) + completed(s);
    still = n === last ? still + 1 : 0;
    last = n;
    await sleep(150);
  }
  return Math.max(peak, procStatus(pid, 'VmHWM'));
}

for (const backend of BACKENDS) {
  describe(`slow readers and pipelining, on ${backend}`, { ...onBackend(backend), skip: onBackend(backend).skip || PROC_SKIP }, () => {
    let s: Spawned;
    let reader = '';
    let drop: (() => Promise<void>) | undefined;
    const start = async (extra: string[] = []) => {
      const pg = backend === 'postgres' ? await freshPgDatabase() : null;
      drop = pg?.drop;
      s = await spawnHush(
        [
          '--data-dir',
          tempDir(),
          '--listen',
          '127.0.0.1:0',
          '--master-key-file',
          masterKeyFile(),
          ...NO_LIMITS,
          ...extra,
          ...(pg ? ['--database-url', pg.url] : []),
        ],
        {},
        { label: `slow readers ${backend}` },
      );
      const root = s.rootToken!;
      assert.equal((await call(s.url, 'POST', '/v1/projects', { token: root, body: { name: 'dos' } })).status, 201);
      assert.equal((await call(s.url, 'POST', '/v1/projects/dos/envs', { token: root, body: { name: 'big' } })).status, 201);
      const set: Record<string, string> = {};
      for (let i = 0; i < VALUES; i++) set[`V${i}`] = String.fromCharCode(97 + (i % 26)).repeat(VALUE_BYTES);
      const w = await call(s.url, 'PATCH', ENV, { token: root, body: { set } });
      assert.equal(w.status, 200, w.text.slice(0, 200));
      const t = await call(s.url, 'POST', '/v1/tokens', { token: root, body: { name: 'reader', scopes: ['read:dos/big'] } });
      assert.equal(t.status, 201);
      reader = t.body.token;
    };
    const stop = async () => {
      await s?.stop();
      await drop?.();
    };

    describe('with the default limits', () => {
      before(async () => {
        await start();
      });
      after(stop);

      it(
        '50 connections x 20 pipelined reads of' +
          ' a 1.87 MB env that never read keep the' +
          (" server's memory bounded, and every" + ' request is answered once the clients read'),
        async () => {
          const before = procStatus(s.child.pid!, 'VmRSS');
          const seen = incoming(s);
          const get = `GET ${ENV} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reader}\r\n\r\n`;
          const readers = await Promise.all(Array.from({ length: 50 }, () => slowReader(s.url, get.repeat(20))));
          const peak = await peakRssWhile(s, seen + 50);
          console.log(
            `# server RSS ${backend}:` +
              ` ${(before / MB).toFixed(0)}` +
              ` MB before, peak ${(peak / MB).toFixed(0)}` +
              (` MB with 50 x 20 pipelined reads unread` + ` (${incoming(s) - seen} requests begun)`),
          );
          // Measured: 326-460 MB on a quiet machine, 622 and 821 MB in full-suite runs (garbage of the answers
          // the 50 connections' handlers build at once, which nothing bounds in total yet: docs/security.md);
          // the code before the fix reached 1.9-2.1 GB.
          assert.ok(peak < 1200 * MB, `the server's RSS reached ${(peak / MB).toFixed(0)} MB (bound 1200 MB)`);
          // The server still answers others meanwhile.
          assert.equal((await call(s.url, 'GET', '/v1/sys/health')).status, 200);
          // Once the clients read, every request is answered, in order: 200, or 503 server_busy while the buffered answers exceeded the budget.
          for (const r of readers) r.drain();
          await waitFor(
            () => readers.every((r) => responses(Buffer.concat(r.got)).length === 20),
            'every pipelined request to be answered',
            120_000,
          );
          let ok = 0;
          for (const r of readers) {
            for (const x of responses(Buffer.concat(r.got))) {
              if (x.status === 200) ok++;
              else assert.deepEqual([x.status, x.code, x.retryAfter !== null], [503, 'server_busy', true]);
            }
            r.sock.destroy();
          }
          console.log(`# ${ok} of 1000 answered 200, ${1000 - ok} answered 503 server_busy`);
          assert.ok(ok > 0);
        },
      );

      it('pipelining and keep-alive still work: 10 requests sent at once on one connection are answered in order', async () => {
        const text = Array.from(
          { length: 10 },
          (_, i) => `GET /v1/sys/health?n=${i} HTTP/1.1\r\nHost: x\r\nX-Request-Id: client-${i}\r\n\r\n`,
        ).join('');
        const r = await slowReader(s.url, text);
        r.drain();
        await waitFor(() => responses(Buffer.concat(r.got)).length === 10, 'ten answers');
        const raw = Buffer.concat(r.got).toString('latin1');
        assert.equal(responses(Buffer.concat(r.got)).filter((x) => x.status === 200).length, 10);
        assert.ok(!r.closed, 'the connection stays open (keep-alive)');
        r.sock.destroy();
        assert.match(raw, /^HTTP\/1\.1 200/);
      });

      it(
        'more than 32 requests waiting on one' +
          ' connection: the first are answered,' +
          (' then one 429 too_many_pipelined_requests,' + ' and the connection is closed'),
        async () => {
          const text = Array.from({ length: 200 }, () => `GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n`).join('');
          const r = await slowReader(s.url, text);
          r.drain();
          await waitFor(() => r.closed, 'the server to close the connection');
          const got = responses(Buffer.concat(r.got));
          assert.ok(got.length > 1 && got.length < 200, `${got.length} of 200 pipelined requests were answered`);
          assert.deepEqual(
            got.slice(0, -1).map((x) => x.status),
            Array(got.length - 1).fill(200),
          );
          assert.deepEqual([got.at(-1)!.status, got.at(-1)!.code], [429, 'too_many_pipelined_requests']);
          assert.equal((await call(s.url, 'GET', '/v1/sys/health')).status, 200);
        },
      );
    });

    describe('with a small --response-buffer-limit', () => {
      before(async () => {
        await start(['--response-buffer-limit', '8MiB']);
      });
      after(stop);

      it('past the budget of buffered answers, a large answer is 503 server_busy with Retry-After; small ones are still served', async () => {
        const seen = completed(s);
        const get = `GET ${ENV} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reader}\r\n\r\n`;
        // Several each: the kernel's socket buffers take the first answers of a connection (about 4 MB on loopback).
        const readers = await Promise.all(Array.from({ length: 12 }, () => slowReader(s.url, get.repeat(5))));
        await waitFor(() => incoming(s) - seen >= 12, 'the slow reads to arrive');
        // A reader that reads: the budget is full of the others' answers.
        let busy: Awaited<ReturnType<typeof call>> | null = null;
        await waitFor(async () => {
          busy = await call(s.url, 'GET', ENV, { token: reader });
          return busy.status === 503;
        }, 'a large read to be refused while the slow readers hold the budget');
        assert.equal(busy!.body.error.code, 'server_busy');
        assert.ok(busy!.headers.get('retry-after'));
        assert.equal((await call(s.url, 'GET', '/v1/sys/health')).status, 200);
        assert.equal((await call(s.url, 'GET', `${ENV}/V1`, { token: reader })).status, 200);
        for (const r of readers) r.sock.destroy();
        // Once they are gone, the budget is free again.
        await waitFor(async () => (await call(s.url, 'GET', ENV, { token: reader })).status === 200, 'the budget to be free again');
      });
    });
  });
}
