// The SDK as a user gets it: `npm pack` of the workspace package, installed
// into an empty project with no network, then used from CommonJS, from ES
// modules, and type-checked under three TypeScript module resolutions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let dir: string;
let app: string;
let tarball: string;
let packed: { size: number; files: { path: string }[] };
let server: TestServer;

before(async () => {
  dir = tempDir('hush-sdk-pkg-');
  // The build is npm run build's (prepack would only build it again).
  const out = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: join(ROOT, 'sdk'),
    env: NPM_ENV,
    maxBuffer: 8 << 20,
  });
  packed = JSON.parse(out.stdout)[0];
  tarball = join(dir, (packed as unknown as { filename: string }).filename);
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  server = await startServer();
  await server.api('POST', '/v1/projects', { name: 'api' });
  await server.api('POST', '/v1/projects/api/envs', { name: 'prod' });
  await server.api('PUT', '/v1/projects/api/envs/prod/secrets/DB_URL', { value: 'postgres://from-the-vault' });
});
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hush-vault-sdk as a package', () => {
  test('packs small, with both builds and no install scripts', () => {
    assert.ok(packed.size < 200_000, `packed ${packed.size} bytes`);
    const paths = packed.files.map((f) => f.path);
    for (const p of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/esm/index.js',
      'dist/esm/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/cjs/package.json',
    ])
      assert.ok(paths.includes(p), p);
    assert.deepEqual(
      paths.filter((p) => p.startsWith('src/') || p.includes('test')),
      [],
    );
  });

  test('installs as exactly one package, offline, running no script', async () => {
    const r = await run('npm', ['install', '--offline', '--foreground-scripts', tarball], { cwd: app, env: NPM_ENV });
    assert.match(r.stdout, /added 1 package\b/);
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules', 'hush-vault-sdk', 'package.json'), 'utf8'));
    assert.deepEqual(pkg.dependencies ?? {}, {});
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts?.[s], undefined, s);
    assert.doesNotMatch(r.stdout + r.stderr, /> hush-vault-sdk@/);
  });

  test('CommonJS require and ESM import both read the server (and the error guards work from CommonJS)', async () => {
    writeFileSync(
      join(app, 'cjs.cjs'),
      `
const { createClient, isNotFoundError } = require('hush-vault-sdk');
(async () => {
  const c = createClient();
  const { secrets } = await c.secrets.getAll('api', 'prod');
  const miss = await c.secrets.get('api', 'prod', 'NOPE').catch((e) => e);
  console.log(JSON.stringify({ url: secrets.DB_URL, notFound: isNotFoundError(miss) }));
})();`,
    );
    writeFileSync(
      join(app, 'esm.mjs'),
      `
import { createClient, loadEnv } from 'hush-vault-sdk';
const { secrets } = await createClient().secrets.getAll('api', 'prod');
await loadEnv({ project: 'api', env: 'prod' });
console.log(JSON.stringify({ url: secrets.DB_URL, env: process.env.DB_URL }));`,
    );
    const env = { ...process.env, HUSH_ADDR: server.url, HUSH_TOKEN: server.rootToken };
    const cjs = JSON.parse((await run(process.execPath, ['cjs.cjs'], { cwd: app, env })).stdout);
    assert.deepEqual(cjs, { url: 'postgres://from-the-vault', notFound: true });
    const esm = JSON.parse((await run(process.execPath, ['esm.mjs'], { cwd: app, env })).stdout);
    assert.deepEqual(esm, { url: 'postgres://from-the-vault', env: 'postgres://from-the-vault' });
  });

  for (const [resolution, module, files] of [
    ['node10', 'commonjs', ['index.ts']],
    ['nodenext', 'nodenext', ['esm.mts', 'cjs.cts']],
    ['bundler', 'esnext', ['index.ts']],
  ] as const) {
    test(`types resolve with moduleResolution ${resolution}, and a wrong call is a type error`, async () => {
      const d = join(app, `ts-${resolution}`);
      mkdirSync(d, { recursive: true });
      const good = `import { createClient, isNotFoundError, type SecretsSnapshot } from 'hush-vault-sdk';
import { checkTokenFormat } from 'hush-vault-sdk/token-format';
export const valid: boolean = checkTokenFormat('hush_x').ok;
export async function main(): Promise<string | undefined> {
  const snap: SecretsSnapshot = await createClient({ caFile: '/etc/ca.pem' }).secrets.getAll('api', 'prod');
  return isNotFoundError(snap) ? undefined : snap.secrets.DB_URL;
}
`;
      const cjs = good
        .replace(
          "import { createClient, isNotFoundError, type SecretsSnapshot } from 'hush-vault-sdk';",
          "import sdk = require('hush-vault-sdk');\nconst { createClient, isNotFoundError } = sdk;\ntype SecretsSnapshot = sdk.SecretsSnapshot;",
        )
        .replace(
          "import { checkTokenFormat } from 'hush-vault-sdk/token-format';",
          "import tf = require('hush-vault-sdk/token-format');\nconst { checkTokenFormat } = tf;",
        );
      for (const f of files) writeFileSync(join(d, f), f === 'cjs.cts' ? cjs : good);
      // One compilation: the good files must compile clean, the bad one must fail on its wrong option only.
      const bad = `bad.${files[0].split('.')[1]}`;
      writeFileSync(join(d, bad), "import { createClient } from 'hush-vault-sdk';\ncreateClient({ retries: 'three' });\n");
      writeFileSync(
        join(d, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module,
            moduleResolution: resolution,
            target: 'es2022',
            strict: true,
            noEmit: true,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
            skipLibCheck: false,
          },
          files: [...files, bad],
        }),
      );
      const out = await run(process.execPath, [TSC, '-p', d], { cwd: d }).then(
        () => '',
        (e) => String(e.stdout),
      );
      const errors = out.split('\n').filter((l) => /error TS/.test(l));
      assert.equal(errors.length, 1, out);
      assert.match(errors[0], /^bad\.\w+\(2,\d+\): error TS2322/);
    });
  }
});
