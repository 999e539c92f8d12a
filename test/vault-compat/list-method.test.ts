/**
 * The LIST method (vault/http/list-method.ts): Node's HTTP parser refuses
 * it, so a front on each connection rewrites `LIST /v1/<mount>/...` into
 * `GET ...?list=true` at real message boundaries. Raw sockets: keep-alive,
 * pipelining, bodies by Content-Length and chunked, and what stays refused.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ListRewriter } from '../../vault/http/list-method.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { seed } from '../helpers/seed.js';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw connection that reads responses one by one (Content-Length framed, as the server sends them). */
function rawConnection(url: string): { socket: Socket; send(text: string): void; next(): Promise<RawResponse>; closed(): Promise<void> } {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  let buf = Buffer.alloc(0);
  let ended = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    wake();
  });
  socket.on('close', () => {
    ended = true;
    wake();
  });
  socket.on('error', () => undefined);
  const take = (): RawResponse | null => {
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const head = buf.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of head.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const len = Number(headers['content-length'] ?? 0);
    if (buf.length < end + 4 + len) return null;
    const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    buf = buf.subarray(end + 4 + len);
    return { status: Number(head[0].split(' ')[1]), headers, body };
  };
  return {
    socket,
    send: (text) => {
      socket.write(text);
    },
    async next() {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = take();
        if (r) return r;
        if (ended) throw new Error(`connection closed; ${buf.length} bytes unread`);
        if (Date.now() > deadline) throw new Error('no response within 20 s');
        await new Promise<void>((res) => {
          waiters.push(res);
          setTimeout(res, 1000);
        });
      }
    },
    closed: () =>
      new Promise<void>((res) => {
        if (ended) res();
        else socket.once('close', () => res());
      }),
  };
}

describe('LIST over raw sockets', () => {
  let s: TestServer;
  let auth: string;
  before(async () => {
    s = await startServer();
    auth = `X-Vault-Token: ${s.rootToken}\r\n`;
    await seed(s.api, { api: { prod: { A: '1' }, staging: {} }, web: { dev: {} } });
  });
  after(async () => {
    await s?.close();
  });

  it('a LIST request is answered, and the keep-alive connection serves a GET and another LIST after it', async () => {
    const c = rawConnection(s.url);
    c.send(`LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\n${auth}\r\n`);
    const r1 = await c.next();
    assert.equal(r1.status, 200, r1.body);
    assert.deepEqual(JSON.parse(r1.body).data.keys, ['api/', 'web/']);
    assert.equal(r1.headers.connection, 'keep-alive');
    c.send(`GET /v1/secret/data/api/prod HTTP/1.1\r\nHost: h\r\n${auth}\r\n`);
    const r2 = await c.next();
    assert.equal(r2.status, 200, r2.body);
    assert.deepEqual(JSON.parse(r2.body).data.data, { A: '1' });
    c.send(`LIST /v1/secret/metadata/api?x=1 HTTP/1.1\r\nHost: h\r\n${auth}\r\n`);
    const r3 = await c.next();
    assert.equal(r3.status, 200, r3.body);
    assert.deepEqual(JSON.parse(r3.body).data.keys, ['prod', 'staging']);
    c.socket.end();
  });

  it(
    'pipelined requests: a body (Content-Length, then chunked) that holds "LIST ..." is left alone, ' + 'the LIST after it is answered',
    async () => {
      const c = rawConnection(s.url);
      const value = 'LIST /v1/secret/metadata/ HTTP/1.1\r\n\r\n';
      const body = JSON.stringify({ data: { TRAP: value } });
      const chunked = JSON.stringify({ data: { TRAP: value, MORE: 'LIST /v1/secret/' } });
      const chunks = [chunked.slice(0, 7), chunked.slice(7, 30), chunked.slice(30)];
      c.send(
        `POST /v1/secret/data/api/staging HTTP/1.1\r\nHost: h\r\n${auth}Content-Type: ` +
          `application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
          `LIST /v1/secret/metadata/web HTTP/1.1\r\nHost: h\r\n${auth}\r\n` +
          (`PUT /v1/secret/data/api/staging HTTP/1.1\r\nHost: h\r\n${auth}Content-Type: ` +
            `application/json\r\nTransfer-Encoding: chunked\r\n\r\n`) +
          chunks.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') +
          '0\r\n\r\n' +
          `LIST /v1/secret/metadata/api/ HTTP/1.1\r\nHost: h\r\n${auth}\r\n`,
      );
      const statuses: number[] = [];
      const bodies: any[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await c.next();
        statuses.push(r.status);
        bodies.push(JSON.parse(r.body));
      }
      assert.deepEqual(statuses, [200, 200, 200, 200], JSON.stringify(bodies));
      assert.deepEqual(bodies[1].data.keys, ['dev']);
      assert.deepEqual(bodies[3].data.keys, ['prod', 'staging']);
      const stored = await s.api('GET', '/v1/projects/api/envs/staging/secrets');
      assert.deepEqual(stored.body.secrets, { MORE: 'LIST /v1/secret/', TRAP: value });
      c.socket.end();
    },
  );

  it('LIST anywhere but the KV mount is still refused by the parser (400, connection closed)', async () => {
    for (const line of [
      'LIST /v1/projects HTTP/1.1',
      'LIST /v1/secretx/metadata/ HTTP/1.1',
      'LIST http://h/v1/secret/metadata/ HTTP/1.1',
    ]) {
      const c = rawConnection(s.url);
      c.send(`${line}\r\nHost: h\r\n${auth}\r\n`);
      const r = await c.next();
      assert.equal(r.status, 400, line);
      assert.equal(JSON.parse(r.body).error.code, 'invalid_request');
      await c.closed();
    }
  });

  it("the parser's other checks still apply to a rewritten request (a malformed header is 400)", async () => {
    const c = rawConnection(s.url);
    c.send(`LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n${auth}\r\n`);
    assert.equal((await c.next()).status, 400);
    await c.closed();
    const d = rawConnection(s.url);
    d.send(`LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: ` + `chunked\r\n${auth}\r\n0\r\n\r\n`);
    assert.equal((await d.next()).status, 400);
    await d.closed();
  });

  it('a request split byte by byte is reassembled as sent', async () => {
    const c = rawConnection(s.url);
    const text = `LIST /v1/secret/metadata/api HTTP/1.1\r\nHost: h\r\n${auth}\r\n`;
    c.socket.setNoDelay(true);
    for (const ch of text) {
      c.socket.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    const r = await c.next();
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body).data.keys, ['prod', 'staging']);
    c.socket.end();
  });
});

describe('ListRewriter (the byte-stream rewriter)', () => {
  const stream = [
    'LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: h\r\n\r\n',
    'POST /v1/secret/data/a/b HTTP/1.1\r\nContent-Length: 38\r\n\r\nLIST /v1/secret/metadata/ ' + 'HTTP/1.1\r\n\r\n',
    '\r\nLIST /v1/secret/metadata/p?x=1 HTTP/1.1\r\nHost: h\r\n\r\n',
    'PUT /v1/secret/data/a/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nLIST ' +
      '\r\n10\r\n/v1/secret/abcde\r\n0\r\nTrailer: x\r\n\r\n',
    'LIST /v1/other/ HTTP/1.1\r\n\r\n',
  ].join('');
  const expected = [
    'GET /v1/secret/metadata/?list=true HTTP/1.1\r\nHost: h\r\n\r\n',
    'POST /v1/secret/data/a/b HTTP/1.1\r\nContent-Length: 38\r\n\r\nLIST /v1/secret/metadata/ ' + 'HTTP/1.1\r\n\r\n',
    '\r\nGET /v1/secret/metadata/p?x=1&list=true HTTP/1.1\r\nHost: h\r\n\r\n',
    'PUT /v1/secret/data/a/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nLIST ' +
      '\r\n10\r\n/v1/secret/abcde\r\n0\r\nTrailer: x\r\n\r\n',
    'LIST /v1/other/ HTTP/1.1\r\n\r\n',
  ].join('');

  it('rewrites exactly the LIST request lines under the mount, at message starts only', () => {
    const r = new ListRewriter('secret');
    assert.equal(Buffer.concat([r.feed(Buffer.from(stream)), r.flush()]).toString('latin1'), expected);
  });

  it('gives the same bytes however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
        const at = [...new Set(cuts)].sort((a, b) => a - b);
        const r = new ListRewriter('secret');
        const out: Buffer[] = [];
        let prev = 0;
        for (const c of [...at, stream.length]) {
          out.push(r.feed(Buffer.from(stream.slice(prev, c), 'latin1')));
          prev = c;
        }
        out.push(r.flush());
        assert.equal(Buffer.concat(out).toString('latin1'), expected);
      }),
      { numRuns: 300 },
    );
  });

  it('goes to pass-through for what it does not follow, and then rewrites nothing', () => {
    for (const head of [
      'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n',
      'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      'GET / HTTP/1.1\nHost: h\r\n\r\n',
      'GET / HTTP/1.1\r\n folded: x\r\n\r\n',
    ]) {
      const r = new ListRewriter('secret');
      const tail = 'LIST /v1/secret/metadata/ HTTP/1.1\r\n\r\n';
      assert.equal(r.feed(Buffer.from(head + tail)).toString('latin1'), head + tail, head);
      assert.equal(r.passing, true, head);
    }
  });
});
