import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';
import { unknownToken } from '../sdk/helpers.js';
import { cli, closedPort, oneErrorLine, rootCli, writeFile, type Cli } from './helpers.js';

describe('hush projects, envs, secrets, tokens against a real server', () => {
  let s: TestServer;
  let root: Cli;

  before(async () => {
    s = await startServer();
    root = rootCli(s.url, s.rootToken);
  });
  after(() => s.close());

  it('projects create, list and delete, in JSON and as tables', async () => {
    const created = await root.json(['projects', 'create', 'web']);
    assert.equal(created.name, 'web');
    const human = await root.run(['projects', 'create', 'web2']);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, 'Created project web2.\n');
    const list = await root.json(['projects', 'list']);
    assert.deepEqual(list.map((p: { name: string }) => p.name).sort(), ['web', 'web2']);
    const table = await root.run(['projects', 'ls']);
    assert.match(table.stdout, /^NAME\s+CREATED\n/);
    assert.match(table.stdout, /^web2\s+\d{4}-\d\d-\d\d /m);
    const del = await root.json(['projects', 'delete', 'web2', '--yes']);
    assert.deepEqual(del, { name: 'web2', deleted: true });
    assert.deepEqual(
      (await root.json(['projects', 'list'])).map((p: { name: string }) => p.name),
      ['web'],
    );
  });

  it('deleting a project without --yes and without a terminal refuses with exit 2 and deletes nothing', async () => {
    await root.json(['projects', 'create', 'keep']);
    const r = await root.run(['projects', 'delete', 'keep']);
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /--yes/);
    assert.ok((await root.json(['projects', 'list'])).some((p: { name: string }) => p.name === 'keep'));
  });

  it('creating an existing project is exit 6; deleting a missing one is exit 5', async () => {
    await root.json(['projects', 'create', 'dup']);
    const again = await root.run(['projects', 'create', 'dup']);
    assert.equal(again.code, 6);
    assert.match(oneErrorLine(again.stderr), /already exists/);
    const missing = await root.run(['projects', 'delete', 'nope', '--yes']);
    assert.equal(missing.code, 5);
    oneErrorLine(missing.stderr);
  });

  it('an invalid project name is a usage error (exit 2) before any request', async () => {
    const r = await root.run(['projects', 'create', 'Bad Name']);
    assert.equal(r.code, 2);
    assert.match(oneErrorLine(r.stderr), /not a valid project name/);
  });

  it('envs create, list and delete within --project', async () => {
    await root.json(['projects', 'create', 'shop']);
    const e = await root.json(['envs', 'create', 'dev', '-p', 'shop']);
    assert.equal(e.project, 'shop');
    assert.equal(e.name, 'dev');
    assert.equal((await root.run(['envs', 'create', 'prod', '--project', 'shop'])).stdout, 'Created environment shop/prod.\n');
    const list = await root.json(['envs', 'list', '-p', 'shop']);
    assert.deepEqual(list.map((x: { name: string }) => x.name).sort(), ['dev', 'prod']);
    assert.match((await root.run(['envs', 'list', '-p', 'shop'])).stdout, /^NAME\s+REVISION\s+CREATED\n/);
    assert.deepEqual(await root.json(['envs', 'delete', 'prod', '-p', 'shop', '--yes']), { project: 'shop', name: 'prod', deleted: true });
    const noProject = await root.run(['envs', 'list']);
    assert.equal(noProject.code, 2);
    assert.match(oneErrorLine(noProject.stderr), /no project given/);
  });

  describe('secrets', () => {
    let u: Cli;
    before(async () => {
      await s.api('POST', '/v1/projects', { name: 'api' });
      await s.api('POST', '/v1/projects/api/envs', { name: 'dev' });
      u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
    });

    it('set K=V stores the value and warns on stderr that it may end up in shell history', async () => {
      const r = await u.run(['secrets', 'set', 'HIST=visible']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'Set HIST in api/dev (version 1).\n');
      assert.match(r.stderr, /^hush: warning: .*shell history.*hush secrets set NAME.*--from-file/);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/HIST')).body.value, 'visible');
    });

    it('set with several pairs is one atomic change and reports added/changed/unchanged', async () => {
      await u.run(['secrets', 'set', 'M1=a']);
      const r = await u.json(['secrets', 'set', 'M1=a', 'M2=b', 'M3=c=d']);
      assert.deepEqual(
        { added: r.added, changed: r.changed, unchanged: r.unchanged },
        { added: ['M2', 'M3'], changed: [], unchanged: ['M1'] },
      );
      const human = await u.run(['secrets', 'set', 'M1=z', 'M2=b']);
      assert.match(human.stdout, /Set 2 secrets in api\/dev: 0 added, 1 changed, 1 unchanged \(revision \d+\)\./);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/M3')).body.value, 'c=d');
    });

    it('set K reads the value from stdin when piped, dropping one trailing newline, and does not warn', async () => {
      const r = await u.run(['secrets', 'set', 'PIPED'], { input: 'from stdin\n\n' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/PIPED')).body.value, 'from stdin\n');
      const empty = await u.run(['secrets', 'set', 'PIPED2'], { input: '' });
      assert.equal(empty.code, 2);
      assert.match(oneErrorLine(empty.stderr), /no value on stdin/);
    });

    it('set K --from-file stores the file byte for byte', async () => {
      const pem = '-----BEGIN KEY-----\nabc\n-----END KEY-----\n';
      const f = writeFile(u.home, 'key.pem', pem);
      assert.equal((await u.run(['secrets', 'set', 'TLS_KEY', '--from-file', f])).code, 0);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/TLS_KEY')).body.value, pem);
      const bad = await u.run(['secrets', 'set', 'A=1', '--from-file', f]);
      assert.equal(bad.code, 2);
    });

    it('set K --from-file /dev/stdin keeps every byte, also when stdin is a socket (a child of Node)', async () => {
      // runHush's stdin is a socket pair, where open('/dev/stdin') fails with ENXIO.
      const r = await u.run(['secrets', 'set', 'RAW_STDIN', '--from-file', '/dev/stdin'], { input: 'kept\n' });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/dev/secrets/RAW_STDIN')).body.value, 'kept\n');
    });

    it('get prints exactly the value (no newline when piped); --version reads an older one', async () => {
      await u.run(['secrets', 'set', 'VER'], { input: 'one' });
      await u.run(['secrets', 'set', 'VER'], { input: 'two' });
      assert.equal((await u.run(['secrets', 'get', 'VER'])).stdout, 'two');
      assert.equal((await u.run(['secrets', 'get', 'VER', '--version', '1'])).stdout, 'one');
      const j = await u.json(['secrets', 'get', 'VER']);
      assert.equal(j.value, 'two');
      assert.equal(j.version, 2);
      assert.equal(j.key, 'VER');
    });

    it('list prints names and versions, never values', async () => {
      await u.run(['secrets', 'set', 'LISTED'], { input: 'sup3r-s3cret-value' });
      const r = await u.run(['secrets', 'list']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^NAME\s+VERSION\s+UPDATED\n/);
      assert.match(r.stdout, /^LISTED\s+1\s/m);
      assert.doesNotMatch(r.stdout, /sup3r/);
      const j = await u.json(['secrets', 'list']);
      assert.ok(j.secrets.some((x: { key: string }) => x.key === 'LISTED'));
      assert.doesNotMatch(JSON.stringify(j), /sup3r/);
    });

    it('delete keeps history; history lists versions; a deleted secret is exit 5', async () => {
      await u.run(['secrets', 'set', 'GONE'], { input: 'v1' });
      await u.run(['secrets', 'set', 'GONE'], { input: 'v2' });
      const d = await u.run(['secrets', 'delete', 'GONE']);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /Deleted GONE from api\/dev/);
      const h = await u.json(['secrets', 'history', 'GONE']);
      assert.equal(h.current, null);
      assert.deepEqual(
        h.versions.map((v: { version: number }) => v.version),
        [3, 2, 1],
      );
      const table = await u.run(['secrets', 'history', 'GONE']);
      assert.match(table.stdout, /^VERSION\s+CREATED\s+BY\s+STATE\n3\s.*deleted/);
      const g = await u.run(['secrets', 'get', 'GONE']);
      assert.equal(g.code, 5);
      assert.match(oneErrorLine(g.stderr), /GONE/);
    });

    it('a missing environment is exit 5; an invalid variable name is exit 2', async () => {
      const r = await u.run(['secrets', 'list', '-e', 'nope']);
      assert.equal(r.code, 5);
      oneErrorLine(r.stderr);
      const bad = await u.run(['secrets', 'set', '1BAD=x']);
      assert.equal(bad.code, 2);
      assert.match(oneErrorLine(bad.stderr), /1BAD.*not a valid variable name/);
    });

    it('a secrets command with no target says how to give one (exit 2)', async () => {
      const r = await root.run(['secrets', 'list']);
      assert.equal(r.code, 2);
      assert.match(oneErrorLine(r.stderr), /--project\/--env/);
    });
  });

  describe('tokens', () => {
    it('create prints only the token on stdout (details on stderr); --json has it with the metadata', async () => {
      const r = await root.run([
        'tokens',
        'create',
        '--name',
        'ci',
        '--scope',
        'read:api/dev',
        '--ttl',
        '1d',
        '--description',
        'CI reader',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^hush_[0-9A-Za-z]{49}\n$/);
      assert.match(r.stderr, /Created token ci \(tok_\w+\): read:api\/dev, expires /);
      const j = await root.json([
        'tokens',
        'create',
        '--name',
        'ci2',
        '--scope',
        'read:api/dev',
        '--scope',
        'list:api/dev',
        '--cidr',
        '127.0.0.0/8',
      ]);
      assert.match(j.token, /^hush_/);
      assert.deepEqual(j.scopes, ['read:api/dev', 'list:api/dev']);
      assert.deepEqual(j.cidrs, ['127.0.0.0/8']);
      // The new token works for what it grants.
      const reader = rootCli(s.url, r.stdout.trim(), { HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
      assert.equal((await reader.run(['secrets', 'get', 'HIST'])).stdout, 'visible');
    });

    it('list shows ids, names and scopes but never a token string', async () => {
      await root.json(['tokens', 'create', '--name', 'lister', '--scope', 'list:api/dev']);
      const j = await root.json(['tokens', 'list']);
      assert.ok(j.some((t: { name: string }) => t.name === 'lister'));
      assert.doesNotMatch(JSON.stringify(j), /hush_[0-9A-Za-z]{49}/);
      const table = await root.run(['tokens', 'list']);
      assert.match(table.stdout, /^ID\s+NAME\s+SCOPES\s+EXPIRES\s+LAST USED\s+PARENT\n/);
      assert.match(table.stdout, /lister\s+list:api\/dev/);
    });

    it('revoke cuts the token (and its children) off: it then gets exit 4', async () => {
      const t = await root.json(['tokens', 'create', '--name', 'doomed', '--scope', 'read:api/dev']);
      const user = rootCli(s.url, t.token, { HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
      const child = await user.json(['tokens', 'create', '--name', 'doomed-child', '--scope', 'read:api/dev']);
      const r = await root.json(['tokens', 'revoke', t.id]);
      assert.deepEqual(r.revoked.sort(), [t.id, child.id].sort());
      const after = await user.run(['secrets', 'get', 'HIST']);
      assert.equal(after.code, 4);
      oneErrorLine(after.stderr);
      const human = await root.run(['tokens', 'revoke', 'tok_doesnotexist0000000']);
      assert.equal(human.code, 5);
    });

    it('a token without the grant gets exit 4 naming the missing grant', async () => {
      const t = await root.json(['tokens', 'create', '--name', 'ro', '--scope', 'read:api/dev']);
      const ro = rootCli(s.url, t.token, { HUSH_PROJECT: 'api', HUSH_ENV: 'dev' });
      const r = await ro.run(['secrets', 'set', 'X'], { input: 'y' });
      assert.equal(r.code, 4);
      assert.match(oneErrorLine(r.stderr), /write:api\/dev/);
    });
  });

  describe('errors and exit codes', () => {
    it('an unknown command or option is exit 2 with one line', async () => {
      const r = await root.run(['secrets', 'lst']);
      assert.equal(r.code, 2);
      assert.match(oneErrorLine(r.stderr), /did you mean list/);
      const o = await root.run(['projects', 'list', '--bogus']);
      assert.equal(o.code, 2);
      assert.match(oneErrorLine(o.stderr), /Unknown argument: bogus/);
    });

    it('a token is never accepted as a flag value (exit 2, before any request)', async () => {
      const r = await cli().run(['projects', 'list', '--addr', s.url, '--token', s.rootToken]);
      assert.equal(r.code, 2);
      assert.match(oneErrorLine(r.stderr), /never accepted on the command line.*--token-file/);
      assert.doesNotMatch(r.stderr, /hush_/);
    });

    it('a mistyped token is exit 4 offline: no request is made, and the token is not echoed', async () => {
      const bad = s.rootToken.slice(0, -1) + (s.rootToken.endsWith('a') ? 'b' : 'a');
      // The address is a closed port: reaching for the network would give exit 7, not 4.
      const r = await cli({ HUSH_ADDR: `http://127.0.0.1:${await closedPort()}`, HUSH_TOKEN: bad }).run(['projects', 'list']);
      assert.equal(r.code, 4);
      assert.match(oneErrorLine(r.stderr), /token from HUSH_TOKEN is not a valid Hush token: .*checksum/);
      assert.ok(!r.stderr.includes(bad));
    });

    it('a well-formed but unknown token is exit 4 from the server', async () => {
      const r = await cli({ HUSH_ADDR: s.url, HUSH_TOKEN: unknownToken() }).run(['projects', 'list']);
      assert.equal(r.code, 4);
      oneErrorLine(r.stderr);
    });

    it('no token anywhere is exit 4 saying how to log in', async () => {
      const r = await cli({ HUSH_ADDR: s.url }).run(['projects', 'list']);
      assert.equal(r.code, 4);
      assert.match(oneErrorLine(r.stderr), /hush login/);
    });

    it('an unreachable server is exit 7 with one line naming the address', async () => {
      const port = await closedPort();
      const started = Date.now();
      const r = await cli({ HUSH_TOKEN: s.rootToken, HUSH_RETRIES: '1' }).run(['projects', 'list', '--addr', `http://127.0.0.1:${port}`]);
      assert.equal(r.code, 7);
      assert.match(oneErrorLine(r.stderr), new RegExp(`cannot reach the Hush server at http://127\\.0\\.0\\.1:${port}`));
      assert.ok(Date.now() - started < 5000);
    });

    it('--token-file reads the token from a file; a missing file is exit 2', async () => {
      const u = cli({ HUSH_ADDR: s.url });
      const f = writeFile(u.home, 'tok', `${s.rootToken}\n`);
      const ok = await u.run(['projects', 'list', '--token-file', f]);
      assert.equal(ok.code, 0, ok.stderr);
      const missing = await u.run(['projects', 'list', '--token-file', `${f}.nope`]);
      assert.equal(missing.code, 2);
      assert.match(oneErrorLine(missing.stderr), /ENOENT/);
    });
  });
});
