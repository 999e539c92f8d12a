// A private certificate authority, end to end: a CA made here with openssl
// signs the certificate of a real `hush server --tls-cert/--tls-key`
// process; every client trusts it through HUSH_CA_FILE, --ca-file or the
// SDK's ca/caFile options, and says what to do when it does not.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient, createNodeFetch, isUnavailableError, isValidationError } from 'hush-vault-sdk';
import { FULL_CLI, SINGLE_FILE_CLI, spawnServer, type Listening } from '../helpers/cli.js';
import { tempDir } from '../helpers/server.js';
import { OPENSSL_SKIP, privateCa } from '../helpers/tls.js';
import { ensureBinary, runProgram } from './support.js';

let dir: string;
let server: Listening;
let token: string;
let caFile: string;

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: dir,
  HUSH_ADDR: server.url,
  HUSH_TOKEN: token,
  ...extra,
});

describe('a private CA', { skip: OPENSSL_SKIP }, () => {
  before(async () => {
    dir = tempDir('hush-ca-');
    const pki = privateCa(dir);
    caFile = pki.ca;
    server = await spawnServer([
      '--data-dir',
      join(dir, 'data'),
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      pki.cert,
      '--tls-key',
      pki.key,
      '--log-level',
      'warn',
    ]);
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const admin = createClient({ addr: server.url, token: server.rootToken!, caFile });
    await admin.projects.create('api');
    await admin.envs.create('api', 'prod');
    await admin.secrets.set('api', 'prod', 'DB_PASSWORD', 'over-tls');
    token = server.rootToken!;
  });

  after(async () => {
    if (server) assert.equal(await server.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  test('without it, the CLI fails in one line that names HUSH_CA_FILE (exit 7)', async () => {
    const r = await runProgram(process.execPath, [FULL_CLI, 'projects', 'list'], env());
    assert.equal(r.status, 7);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const untrusted = new RegExp(
      String.raw`^hush: cannot reach the Hush server at https://127\.0\.0\.1:\d+ \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: ` +
        String.raw`its TLS certificate is not signed by a CA this client trusts\); give the CA certificate with --ca-file FILE or HUSH_CA_FILE\n$`,
    );
    assert.match(r.stderr, untrusted);
    const run = await runProgram(process.execPath, [FULL_CLI, 'run', '-p', 'api', '-e', 'prod', '--', 'true'], env());
    assert.equal(run.status, 7);
    assert.match(run.stderr, /give the CA certificate with --ca-file FILE or HUSH_CA_FILE; the command was not started\n$/);
    assert.doesNotMatch(run.stderr, /fallback/, 'a certificate problem is not an outage');
  });

  test('HUSH_CA_FILE and --ca-file make the CLI trust it', async () => {
    const a = await runProgram(process.execPath, [FULL_CLI, 'projects', 'list', '--json'], env({ HUSH_CA_FILE: caFile }));
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /"api"/);
    const b = await runProgram(
      process.execPath,
      [FULL_CLI, 'secrets', 'get', 'DB_PASSWORD', '-p', 'api', '-e', 'prod', '--ca-file', caFile],
      env(),
    );
    assert.equal(b.status, 0, b.stderr);
    assert.equal(b.stdout, 'over-tls');
  });

  for (const [name, argv0, pre] of [
    ['the full CLI', process.execPath, [FULL_CLI]],
    ['the single-file client', process.execPath, [SINGLE_FILE_CLI]],
    ['the single executable', '', []],
  ] as const) {
    test(`hush run through ${name} injects the secrets with HUSH_CA_FILE, and with --ca-file`, async () => {
      const bin = argv0 || ensureBinary();
      for (const [args, extra] of [
        [['run'], { HUSH_CA_FILE: caFile }],
        [['run', '--ca-file', caFile], {}],
      ] as const) {
        const r = await runProgram(bin, [...pre, ...args, '-p', 'api', '-e', 'prod', '--', 'sh', '-c', 'echo "$DB_PASSWORD"'], env(extra));
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, 'over-tls\n');
      }
    });
  }

  test('a CA file that is missing or holds no certificate is a usage error (exit 2), before any request', async () => {
    writeFileSync(join(dir, 'not-a-cert.pem'), 'hello\n');
    const cases = [
      [{ HUSH_CA_FILE: join(dir, 'nope.pem') }, [], /cannot read HUSH_CA_FILE \S+nope\.pem \(ENOENT\)/],
      [{ HUSH_CA_FILE: join(dir, 'not-a-cert.pem') }, [], /HUSH_CA_FILE \S+not-a-cert\.pem holds no PEM certificate/],
      [{}, ['--ca-file', join(dir, 'nope.pem')], /cannot read the CA file \S+nope\.pem \(ENOENT\)/],
    ] as const;
    for (const [extra, flags, msg] of cases) {
      for (const args of [
        ['projects', 'list', ...flags],
        ['run', ...flags, '-p', 'api', '-e', 'prod', '--', 'true'],
      ]) {
        const r = await runProgram(process.execPath, [FULL_CLI, ...args], env(extra));
        assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
        assert.match(r.stderr, msg);
        assert.equal(r.stderr.trim().split('\n').length, 1);
      }
    }
  });

  test('the SDK: ca and caFile options, HUSH_CA_FILE, and a clear error without them', async () => {
    const pem = readFileSync(caFile, 'utf8');
    assert.equal((await createClient({ addr: server.url, token, ca: pem }).secrets.get('api', 'prod', 'DB_PASSWORD')).value, 'over-tls');
    assert.equal((await createClient({ addr: server.url, token, caFile }).secrets.get('api', 'prod', 'DB_PASSWORD')).value, 'over-tls');
    assert.equal(
      (await createClient({ addr: server.url, token, fetch: createNodeFetch({ ca: pem }) }).secrets.get('api', 'prod', 'DB_PASSWORD'))
        .value,
      'over-tls',
    );
    process.env.HUSH_CA_FILE = caFile;
    try {
      assert.equal((await createClient({ addr: server.url, token }).secrets.get('api', 'prod', 'DB_PASSWORD')).value, 'over-tls');
    } finally {
      delete process.env.HUSH_CA_FILE;
    }
    await assert.rejects(createClient({ addr: server.url, token, retries: 0 }).projects.list(), (e: unknown) => {
      assert.ok(isUnavailableError(e));
      assert.equal((e as { code: string }).code, 'certificate_untrusted');
      assert.match(
        (e as Error).message,
        /not signed by a CA this client trusts\); give the CA certificate with HUSH_CA_FILE or the ca option$/,
      );
      return true;
    });
    assert.throws(
      () => createClient({ addr: server.url, token, ca: pem, fetch: createNodeFetch() }),
      (e: unknown) => isValidationError(e),
    );
    // A streamed body (backups) comes through the CA-aware fetch too.
    const b = await createClient({ addr: server.url, token, caFile }).backups.create({ passphrase: 'correct horse battery staple' });
    let bytes = 0;
    for await (const chunk of b.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.byteLength;
    assert.ok(bytes > 500, `backup of ${bytes} bytes`);
  });
});
