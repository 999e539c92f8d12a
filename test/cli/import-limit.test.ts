/**
 * Issue 21, second outside review, item 10: an 18 MB .env import sometimes
 * reported EPIPE instead of the body-limit message. A server (or a proxy
 * in front) that answers 413 before reading the body and closes the
 * connection made the client's write fail, and the answer was lost. The
 * CLI must report the 413 every time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { formatToken } from 'hush-vault-sdk/token-format';
import { runHush } from '../helpers/cli.js';
import { startServer, type TestServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'hush-import-limit-'));
const file = join(dir, 'big.env');
// 18 MB: 300 values of 60,000 bytes.
writeFileSync(file, Array.from({ length: 300 }, (_, i) => `K${i}=${'x'.repeat(60_000)}`).join('\n'));
const MESSAGE =
  `hush: ${file} is too large` +
  ` to import at once (the` +
  (` server takes at most` + ` 8388608 bytes per request):`) +
  (` split it into smaller files and import them` + ` one by one, or raise the server's --body-limit`);

/**
 * A server that answers every request 413 as soon as its headers have
 * arrived, without reading the body, and closes the connection at once (as
 * a proxy with a body limit does): the client's write of the rest fails.
 */
function earlyRefuser(): Promise<{ server: Server; url: string }> {
  const server = createServer((sock) => {
    let head = '';
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const body = JSON.stringify({
        error: {
          code: 'payload_too_large',
          message: "request body is larger than the server's limit of 8388608 bytes (--body-limit): send less at a time",
          requestId: 'req_early',
        },
      });
      sock.end(
        `HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      // Unread body bytes in the receive buffer make the close an RST: the client's next write fails.
      setImmediate(() => sock.destroy());
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })),
  );
}

describe('an import over the body limit reports the 413, never EPIPE (review item 10)', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('behind something that answers early and closes', () => {
    let early: { server: Server; url: string };
    before(async () => {
      early = await earlyRefuser();
    });
    after(() => new Promise<void>((r) => early.server.close(() => r())));

    it('eight imports in a row: each says the file is too large and names --body-limit, exit 2', async () => {
      for (let i = 0; i < 8; i++) {
        const r = await runHush(['secrets', 'import', file, '-p', 'web', '-e', 'prod'], {
          env: { HUSH_ADDR: early.url, HUSH_TOKEN: formatToken((n) => randomBytes(n)), HUSH_RETRIES: '0' },
        });
        assert.equal(r.stderr.trim(), MESSAGE, `attempt ${i + 1}`);
        assert.equal(r.code, 2);
      }
    });
  });

  describe('against a real server', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer();
      await s.api('POST', '/v1/projects', { name: 'web' });
      await s.api('POST', '/v1/projects/web/envs', { name: 'prod' });
    });
    after(async () => {
      await s.close();
    });

    it('eight imports in a row say the same, and the server still serves after them', async () => {
      for (let i = 0; i < 8; i++) {
        const r = await runHush(['secrets', 'import', file, '-p', 'web', '-e', 'prod'], {
          env: { HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken },
        });
        assert.equal(r.stderr.trim(), MESSAGE, `attempt ${i + 1}`);
        assert.equal(r.code, 2);
      }
      assert.deepEqual((await s.api('GET', '/v1/projects/web/envs/prod/secrets')).body.secrets, {}, 'nothing was imported');
    });

    it('curl with Expect: 100-continue gets the 413 before sending the body', async () => {
      // Not execFileSync: the server runs in this process.
      const { execFile } = await import('node:child_process');
      const { promisify } = await import('node:util');
      const { stdout: out } = await promisify(execFile)(
        'curl',
        [
          '-sS',
          '-o',
          '-',
          '-w',
          '\n%{http_code} %{size_upload}',
          '-X',
          'PATCH',
          '-H',
          `Authorization: Bearer ${s.rootToken}`,
          '-H',
          'Content-Type: application/json',
          '-H',
          'Expect: 100-continue',
          '--data-binary',
          `@${file}`,
          `${s.url}/v1/projects/web/envs/prod/secrets`,
        ],
        { maxBuffer: 1 << 20 },
      );
      const [body, tail] = [out.slice(0, out.lastIndexOf('\n')), out.slice(out.lastIndexOf('\n') + 1)];
      assert.equal(JSON.parse(body).error.code, 'payload_too_large');
      assert.equal(tail, '413 0', 'answered before a byte of the body was sent');
    });
  });
});
