import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../vault/config.js';
import { parseDuration } from '../../common/duration.js';

describe('config', () => {
  it('uses defaults when nothing is set', () => {
    const c = loadConfig({}, {});
    assert.equal(c.listen.host, '127.0.0.1');
    assert.equal(c.listen.port, 8420);
    assert.equal(c.databaseUrl, null);
    assert.ok(c.dataDir.endsWith('hush-data'));
    assert.equal(c.maxValueBytes, 65536);
    assert.ok(Object.isFrozen(c));
  });

  it('flags win over HUSH_* environment, which wins over defaults', () => {
    const env = { HUSH_LISTEN: '127.0.0.1:9000', HUSH_MAX_VALUE_BYTES: '1KiB' };
    assert.equal(loadConfig({}, env).listen.port, 9000);
    assert.equal(loadConfig({}, env).maxValueBytes, 1024);
    assert.equal(loadConfig({ listen: '127.0.0.1:9100' }, env).listen.port, 9100);
  });

  it('a malformed value is a one-line error naming the setting', () => {
    assert.throws(
      () => loadConfig({}, { HUSH_LISTEN: 'nope' }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'config_invalid');
        assert.match(e.message, /HUSH_LISTEN/);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
    assert.throws(() => loadConfig({ 'max-secrets-per-env': 'lots' }, {}), /--max-secrets-per-env/);
    assert.throws(() => loadConfig({}, { HUSH_DATABASE_URL: 'mysql://x' }), /HUSH_DATABASE_URL/);
    assert.throws(() => loadConfig({}, { HUSH_TOKEN_DEFAULT_TTL: 'forever' }), /HUSH_TOKEN_DEFAULT_TTL/);
    // Caught here, not later by the proxy-address library with a message that names no setting.
    assert.throws(() => loadConfig({}, { HUSH_TRUST_PROXY: '10.0.0.0/8,notacidr' }), /invalid HUSH_TRUST_PROXY: entry 2 /);
    assert.throws(() => loadConfig({ 'trust-proxy': ['10.0.0.0/33'] }, {}), /invalid --trust-proxy: entry 1 /);
    assert.deepEqual(loadConfig({}, { HUSH_TRUST_PROXY: '10.0.0.0/8, ::1, 192.168.1.1, loopback' }).trustProxy, [
      '10.0.0.0/8',
      '::1',
      '192.168.1.1',
      'loopback',
    ]);
  });

  it('an unknown HUSH_* variable is a one-line error naming it, with the closest setting', () => {
    assert.throws(
      () => loadConfig({}, { HUSH_MASTER_KEYFILE: '/secure/hush.key' }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'config_invalid');
        assert.equal(
          e.message,
          'unknown setting HUSH_MASTER_KEYFILE: did you mean HUSH_MASTER_KEY_FILE? the HUSH_* variables are listed in docs/configuration.md',
        );
        assert.ok(!e.message.includes('/secure/hush.key'));
        return true;
      },
    );
    assert.throws(() => loadConfig({}, { HUSH_LISTN: '127.0.0.1:1' }), /unknown setting HUSH_LISTN: did you mean HUSH_LISTEN\?/);
    assert.throws(
      () => loadConfig({}, { HUSH_SOMETHING_ELSE_ENTIRELY: 'x' }),
      /unknown setting HUSH_SOMETHING_ELSE_ENTIRELY: the HUSH_\* variables/,
    );
    // The CLI's and SDK's variables, and the test suite's, share the environment with the server's.
    const c = loadConfig(
      {},
      {
        HUSH_TOKEN: 'hush_x',
        HUSH_ADDR: 'http://h',
        HUSH_PROJECT: 'p',
        HUSH_ENV: 'e',
        HUSH_PROFILE: 'x',
        HUSH_TOKEN_FILE: '/t',
        HUSH_TIMEOUT: '1',
        HUSH_RETRIES: '1',
        HUSH_TEST_PG_URL: 'postgres://x',
        HUSH_LISTEN: '127.0.0.1:9001',
        FOO: 'bar',
      },
    );
    assert.equal(c.listen.port, 9001);
  });

  it('never echoes the value of a bad master key setting', () => {
    assert.throws(
      () => loadConfig({ 'log-level': 'SECRET-LEVEL' }, {}),
      (e: Error) => !e.message.includes('SECRET-LEVEL'),
    );
  });

  it('parses durations', () => {
    assert.equal(parseDuration('30d'), 30 * 86_400_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('0s'), null);
    assert.equal(parseDuration('10'), null);
    assert.equal(parseDuration('1d '), null);
  });

  it('the server and the CLI read durations with one grammar (ms to y, decimals); bare seconds and zero only where asked for', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
    assert.equal(parseDuration('10', { bareSeconds: true }), 10_000);
    assert.equal(parseDuration('0.25', { bareSeconds: true }), 250);
    assert.equal(parseDuration('0s', { allowZero: true }), 0);
    assert.equal(parseDuration('0', { bareSeconds: true }), null);
    assert.equal(parseDuration('0', { bareSeconds: true, allowZero: true }), 0);
    assert.equal(parseDuration('10x', { bareSeconds: true }), null);
    assert.equal(parseDuration('-5s', { allowZero: true }), null);
  });
});
