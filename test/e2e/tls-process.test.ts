/**
 * `hush server --tls-cert --tls-key` as a process, used by the CLI and the
 * SDK as operators run them: separate processes that trust the server's
 * certificate through NODE_EXTRA_CA_CERTS.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runHush, spawnServer, type Listening } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';
import { OPENSSL_SKIP, selfSigned } from '../helpers/tls.js';

const SDK_CLIENT = new URL('../fixtures/sdk-tls-client.js', import.meta.url).pathname;

describe('hush server over TLS, as a process, with the CLI and the SDK', { skip: OPENSSL_SKIP }, () => {
  let dir: string;
  let cert: string;
  let srv: Listening;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = tempDir('hush-tls-e2e-');
    const pair = selfSigned(dir);
    cert = pair.cert;
    srv = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0', '--tls-cert', pair.cert, '--tls-key', pair.key]);
    env = { HUSH_ADDR: srv.url, HUSH_TOKEN: srv.rootToken!, NODE_EXTRA_CA_CERTS: cert };
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on https', () => {
    assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('the CLI creates, sets and reads back over TLS', async () => {
    const run = async (args: string[]) => {
      const r = await runHush(args, { env });
      assert.equal(r.code, 0, `hush ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await run(['projects', 'create', 'tls']);
    await run(['envs', 'create', 'prod', '--project', 'tls']);
    await run(['secrets', 'set', 'VIA_CLI=over tls', '-p', 'tls', '-e', 'prod']);
    assert.equal(await run(['secrets', 'get', 'VIA_CLI', '-p', 'tls', '-e', 'prod']), 'over tls');
  });

  it('a CLI that does not trust the certificate fails in one line, without the token', async () => {
    const r = await runHush(['projects', 'list'], { env: { HUSH_ADDR: srv.url, HUSH_TOKEN: srv.rootToken! } });
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^hush: .*(certificate|self.signed)/i);
    assert.ok(!r.stderr.includes(srv.rootToken!), 'the token is in the error');
  });

  it('the SDK in its own process writes, reads and long-polls over TLS', async () => {
    await runHush(['projects', 'create', 'tls'], { env });
    await runHush(['envs', 'create', 'prod', '--project', 'tls'], { env });
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [SDK_CLIENT, srv.url, srv.rootToken!], {
        env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: cert },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (d) => {
        text += d;
      });
      const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', () => {
        clearTimeout(t);
        resolve(text);
      });
    });
    const r = JSON.parse(out);
    assert.equal(r.ok, true, out);
    assert.equal(r.secrets.VIA_SDK, 'over-tls');
    assert.deepEqual(r.watched, ['over-tls', 'changed']);
  });
});
