import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixture, hush, HUSH_BIN, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => {
  f = await fixture({ A: 'value-a' });
});
after(async () => {
  await f.close();
});

/** Runs `hush ARGS` with a resolve hook that records every module loaded. */
async function modulesLoaded(args: string[]): Promise<string[]> {
  const log = join(f.dir, `modules-${Date.now()}.log`);
  writeFileSync(log, '');
  const hooks = join(f.dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, ` +
      `next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.MODULE_LOG, ` +
      `r.url + '\\n');
  return r;
}`,
  );
  const register = join(f.dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`);
  const r = await hush(args, { ...f.env, MODULE_LOG: log, NODE_OPTIONS: `--import=${pathToFileURL(register).href}` });
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

/** Anything of the server: its code (vault/, migrations/) or a package only it uses. */
const SERVER_SIDE =
  /node_modules\/(knex|fastify|libsodium[^/]*|openpgp|better-sqlite3|pg|pino|croner|@fastify|yargs)\/|\/dist\/(vault|migrations)\//;
const SINGLE_FILE = HUSH_BIN.endsWith('.cjs');
const SDK_CLIENT = '/sdk/dist/esm/client.js';
const SDK_FALLBACK = '/sdk/dist/esm/fallback.js';

describe(
  'hush run startup',
  {
    skip:
      SINGLE_FILE &&
      'the single-file client loads no module files: it is one bundle (test/client/single-file.test.ts ' + 'checks its contents)',
  },
  () => {
    test(
      'hush run -- true loads the SDK client but nothing of the server (vault/, knex, fastify, openpgp, ' +
        'better-sqlite3), nor yargs, nor the optional parts',
      async () => {
        const mods = await modulesLoaded(['run', '--', 'true']);
        assert.ok(
          mods.some((m) => m.endsWith(SDK_CLIENT)),
          'the SDK is loaded from its own package',
        );
        assert.deepEqual(
          mods.filter((m) => SERVER_SIDE.test(m)),
          [],
        );
        for (const part of ['mask', 'watch', 'mount'])
          assert.ok(!mods.some((m) => m.endsWith(`/dist/cli/run/${part}.js`)), `${part}.js loaded without its flag`);
        assert.ok(!mods.some((m) => /node_modules\/dotenv\//.test(m)));
        assert.ok(!mods.some((m) => m.endsWith(SDK_FALLBACK)), 'no fallback cache without --fallback');
      },
    );

    test('the optional parts load with their flags', async () => {
      const mods = await modulesLoaded(['run', '--mask', '--mount', join(f.dir, 'm.env'), '--fallback', join(f.dir, 'c'), '--', 'true']);
      for (const part of ['mask', 'mount'])
        assert.ok(
          mods.some((m) => m.endsWith(`/dist/cli/run/${part}.js`)),
          part,
        );
      assert.ok(mods.some((m) => m.endsWith(SDK_FALLBACK)));
      assert.deepEqual(
        mods.filter((m) => SERVER_SIDE.test(m)),
        [],
      );
    });
  },
);
