import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, hush, nodeChild, sleep, type RunFixture } from './util.js';

const SECRET = 'pg-Secret-fallback-77';
let f: RunFixture;
let stopped = false;
before(async () => {
  f = await fixture({ DB_PASSWORD: SECRET });
});
after(async () => {
  if (!stopped) await f.close();
  else rmSync(f.dir, { recursive: true, force: true });
});

const PRINT = nodeChild('process.stdout.write(String(process.env.DB_PASSWORD))');

describe('hush run --fallback', () => {
  test(
    'the first run fills an encrypted cache; with the server stopped the next run uses it and says so',
    { timeout: 40_000 },
    async () => {
      const cache = join(f.dir, 'cache', 'app-prod.cache');
      const first = await hush(['run', '--fallback', cache, '--', ...PRINT], f.env);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.out, SECRET);
      assert.equal(first.stderr, '');
      assert.equal(statSync(cache).mode & 0o777, 0o600);
      assert.ok(!readFileSync(cache, 'utf8').includes(SECRET), 'the cache is encrypted');

      await f.server.close();
      stopped = true;

      const marker = join(f.dir, 'started');
      const noFallback = await hush(['run', '--', 'sh', '-c', `touch ${marker}`], f.env);
      assert.equal(noFallback.code, 7);
      assert.equal(existsSync(marker), false, 'never started with a partial environment');

      const second = await hush(['run', '--fallback', cache, '--', ...PRINT], f.env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.out, SECRET);
      assert.match(second.stderr, /server unreachable .*serving app\/prod from the fallback cache saved \d+s ago/);

      await sleep(20);
      const tooOld = await hush(['run', '--fallback', cache, '--fallback-max-age', '10ms', '--', 'sh', '-c', `touch ${marker}`], f.env);
      assert.equal(tooOld.code, 7);
      assert.match(tooOld.stderr, /older than the .* limit; not serving it/);
      assert.match(tooOld.stderr, /no usable fallback copy in .*app-prod\.cache; the command was not started/);
      assert.equal(existsSync(marker), false);

      const otherToken = await hush(['run', '--fallback', cache, '--', 'true'], { ...f.env, HUSH_TOKEN: f.server.rootToken });
      assert.equal(otherToken.code, 7, 'a cache is readable only with the token that wrote it');
    },
  );
});
