import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunFast } from '../../cli/run/fast.js';

describe('hush run fast path (flags parsed without yargs)', () => {
  test('parses the usual forms, keeping everything after -- verbatim', () => {
    const a = parseRunFast([
      '-p',
      'api',
      '--env',
      'prod',
      '--mask',
      '--only',
      'A,B',
      '--only=C',
      '--preserve-env',
      '--watch-grace',
      '3s',
      '--mount',
      'm.env',
      '--mount-format',
      'json',
      '--no-env',
      '--timeout',
      '500',
      '--',
      'node',
      '-e',
      '--mask',
      '007',
      '',
      '--',
    ]);
    assert.ok(a);
    assert.equal(a.project, 'api');
    assert.equal(a.env, 'prod');
    assert.equal(a.mask, true);
    assert.deepEqual(a.only, ['A,B', 'C']);
    assert.deepEqual(a['preserve-env'], ['']);
    assert.equal(a['watch-grace'], '3s');
    assert.equal(a['fallback-max-age'], '24h');
    assert.equal(a.mount, 'm.env');
    assert.equal(a['mount-format'], 'json');
    assert.equal(a['no-env'], true);
    assert.equal(a.timeout, 500);
    assert.deepEqual(a['--'], ['node', '-e', '--mask', '007', '', '--']);
    assert.deepEqual(parseRunFast(['--preserve-env=A,B', '--', 'x'])?.['preserve-env'], ['A,B']);
  });

  test('hands anything unusual back to yargs (returns null)', () => {
    for (const argv of [
      ['node', 'x'], // no --
      ['--help', '--', 'x'],
      ['--bogus', '--', 'x'],
      ['stray', '--', 'x'],
      ['-p=api', '--', 'x'],
      ['-pe', 'x', '--', 'x'],
      ['--mask=false', '--', 'x'],
      ['--mount-format', 'xml', '--', 'x'],
      ['--timeout', 'soon', '--', 'x'],
      ['--token', 'hush_x', '--', 'x'],
      ['--preserve-env', 'A', '--', 'x'],
    ])
      assert.equal(parseRunFast(argv), null, argv.join(' '));
  });
});
