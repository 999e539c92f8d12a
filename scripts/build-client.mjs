// Bundles the client commands (cli/client.ts) into one file,
// dist/client/hush.cjs: any Node >= 20 runs it, with no node_modules.
//
// The file holds two bundles. `hush run` (a container entrypoint, started
// on every deploy) runs the small one: its own flag parser, the SDK and the
// process supervisor. Every other command, and any `hush run` line the fast
// parser hands on (help, a typo), runs the full one, kept as a
// brotli-compressed string and compiled only then, so `hush run` never pays
// to read and parse yargs and the rest.
//
// The client never needs the server: an import that resolves into vault/ or
// migrations/, or to a package only the server uses, is replaced by a module
// that fails with one clear line ("... needs the server package").
import { build } from 'esbuild';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/client/hush.cjs`;
const SERVER_PACKAGES =
  /^(knex|fastify|@fastify\/.*|openpgp|better-sqlite3|pg|pino|croner|libsodium-wrappers(-sumo)?|shamir-secret-sharing|@sinclair\/typebox)(\/.*)?$/;
const stubbed = new Set();

const serverOnly = {
  name: 'server-only',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const path = args.path;
      const intoServer =
        /(^|\/)(vault|migrations)\//.test(path) && args.importer.startsWith(root) && !args.importer.includes('/node_modules/');
      if (intoServer || SERVER_PACKAGES.test(path)) {
        stubbed.add(`${path} (from ${args.importer.slice(root.length)})`);
        return { path, namespace: 'server-only' };
      }
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'server-only' }, () => ({
      resolveDir: `${root}cli`,
      loader: 'ts',
      contents:
        "import { needsServerPackage } from './commands/server-stubs.ts';\n" +
        ('throw needsServerPackage(`hush ${process.argv.slice(2).filter((a) => ' + "!a.startsWith('-')).slice(0, 2).join(' ')}`);\n"),
    }));
  },
};

async function bundle(entry) {
  const r = await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    // import() of a built-in becomes require(): a single executable has no ESM loader for it.
    supported: { 'dynamic-import': false },
    // yargs' ESM build reads import.meta.url (for createRequire and its locale
    // folder, absent here: the English built-in texts are used).
    define: { 'import.meta.url': '__hush_bundle_url' },
    logLevel: 'warning',
    plugins: [serverOnly],
    metafile: true,
  });
  return { code: r.outputFiles[0].text, inputs: Object.keys(r.metafile.inputs) };
}

const [fullBundle, runBundle] = await Promise.all([bundle('cli/client.ts'), bundle('cli/run/fast.ts')]);
const full = fullBundle.code;
const run = runBundle.code;
// Compressed: every start reads and scans the whole file, and only the commands other than `hush run` need this part.
const packed = brotliCompressSync(Buffer.from(full), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).toString('base64');
const file =
  `#!/usr/bin/env node
"use strict";
const __hush_bundle_url = ` +
  `require("node:url").pathToFileURL(__filename).href;
(function () {
  const args = ` +
  `process.argv.slice(2);
  function full() {
    const { Script } = require("node:vm");
    const ` +
  `code = require("node:zlib").brotliDecompressSync(Buffer.from(${JSON.stringify(packed)}, ` +
  `"base64")).toString("utf8");
    const fn = new Script("(function (exports, require, module, ` +
  `__filename, __dirname, __hush_bundle_url) {" + code + "\\n})", { filename: __filename ` +
  `}).runInThisContext();
    const m = { exports: {} };
    fn(m.exports, require, m, __filename, ` +
  `__dirname, __hush_bundle_url);
  }
  if (args[0] !== "run") return full();
  const m = { ` +
  `exports: {} };
  (function (exports, module) {
${run}
  })(m.exports, m);
  ` +
  `m.exports.fastRun(args.slice(1)).then((handled) => { if (!handled) full(); }, (e) => { ` +
  `process.stderr.write("hush: " + ((e && e.message) || e) + "\\n"); process.exit(1); });
})();
`;
mkdirSync(`${root}dist/client`, { recursive: true });
writeFileSync(out, file);
chmodSync(out, 0o755);
// What went in, for test/client/single-file.test.ts (and anyone auditing the file).
writeFileSync(`${root}dist/client/inputs.json`, JSON.stringify({ run: runBundle.inputs, full: fullBundle.inputs }, null, 1));
if (process.env.HUSH_BUILD_VERBOSE) for (const s of [...stubbed].sort()) console.log(`  server-only, not bundled: ${s}`);
console.log(
  `built ${out.slice(root.length)} (${(file.length / 1024).toFixed(0)} KiB: hush run ` +
    `${(run.length / 1024).toFixed(0)} KiB, the rest ${(full.length / 1024).toFixed(0)} KiB stored ` +
    `compressed in ${(packed.length / 1024).toFixed(0)} KiB, compiled on use)`,
);
