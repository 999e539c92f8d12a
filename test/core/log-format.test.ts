/**
 * --log-format json|pretty (HUSH_LOG_FORMAT): the setting, and a real
 * `hush server` whose stdout is one readable line per event, with tokens
 * scrubbed as in JSON lines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatToken } from 'hush-vault-sdk/token-format';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../vault/config.js';
import { prettyLine } from '../../vault/log-format.js';
import { tempDir } from '../helpers/server.js';
import { masterKeyFile, spawnHush } from '../reliability/support.js';

describe('--log-format', () => {
  it('is json by default, takes pretty from the flag or HUSH_LOG_FORMAT, and refuses anything else', () => {
    const dir = tempDir('hush-logfmt-');
    assert.equal(loadConfig({ 'data-dir': dir }, {}).logFormat, 'json');
    assert.equal(loadConfig({ 'data-dir': dir }, { HUSH_LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
    assert.equal(loadConfig({ 'data-dir': dir, 'log-format': 'json' }, { HUSH_LOG_FORMAT: 'pretty' }).logFormat, 'json');
    assert.throws(() => loadConfig({ 'data-dir': dir }, { HUSH_LOG_FORMAT: 'xml' }), /invalid HUSH_LOG_FORMAT: must be json or pretty/);
    assert.throws(() => loadConfig({ 'data-dir': dir, 'log-format': 'text' }, {}), /invalid --log-format: must be json or pretty/);
  });

  it('pretty: time, level, message, then the fields; a line that is not JSON passes through', () => {
    const line = prettyLine(
      JSON.stringify({
        level: 40,
        time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
        pid: 1,
        hostname: 'h',
        svc: 'hush',
        msg: 'slow\nthing',
        reqId: 'req_1',
        res: { statusCode: 200 },
        note: 'a b',
      }),
    );
    assert.equal(line, '03:04:05.006 WARN  "slow\\nthing" reqId=req_1 res={"statusCode":200} note="a b"\n');
    assert.equal(prettyLine('not json'), 'not json\n');
  });

  it('a server started with --log-format pretty writes readable lines, tokens scrubbed', async () => {
    const s = await spawnHush([
      '--data-dir',
      tempDir('hush-logfmt-'),
      '--listen',
      '127.0.0.1:0',
      '--master-key-file',
      masterKeyFile(),
      '--log-format',
      'pretty',
    ]);
    const pasted = formatToken((n) => randomBytes(n));
    try {
      assert.equal((await fetch(`${s.url}/v1/projects/${pasted}/envs`)).status, 401);
      assert.equal((await fetch(`${s.url}/v1/sys/health`)).status, 200);
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const lines = s
      .stdout()
      .split('\n')
      .filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l));
    assert.ok(
      lines.some((l) => / INFO {2}request completed .*statusCode/.test(l)),
      s.stdout().slice(0, 2000),
    );
    assert.ok(
      !s
        .stdout()
        .split('\n')
        .some((l) => l.startsWith('{')),
      'no JSON line',
    );
    assert.ok(!s.stdout().includes(pasted), 'the token pasted in the URL is scrubbed');
  });
});
