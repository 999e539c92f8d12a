// Bundles the client commands (cli/client.ts) into one file,
// dist/client/hush.cjs: any Node >= 20 runs it, with no node_modules.
//
// The client never needs the server: an import that resolves into vault/ or
// migrations/, or to a package only the server uses, is replaced by a module
// that fails with one clear line ("... needs the server package"). The build
// fails if such a module would be reached from `hush run`'s own code.
import { build } from 'esbuild';
import { mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/client/hush.cjs`;
const SERVER_PACKAGES = /^(knex|fastify|@fastify\/.*|openpgp|better-sqlite3|pg|pino|croner|libsodium-wrappers(-sumo)?|shamir-secret-sharing|@sinclair\/typebox)(\/.*)?$/;
const stubbed = new Set();

const serverOnly = {
  name: 'server-only',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const path = args.path;
      const intoServer = /(^|\/)(vault|migrations)\//.test(path) && args.importer.startsWith(root) && !args.importer.includes('/node_modules/');
      if (intoServer || SERVER_PACKAGES.test(path)) {
        stubbed.add(`${path} (from ${args.importer.slice(root.length)})`);
        return { path, namespace: 'server-only' };
      }
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'server-only' }, () => ({
      resolveDir: `${root}cli`,
      loader: 'ts',
      contents: "import { needsServerPackage } from './commands/server-stubs.ts';\n" +
        "throw needsServerPackage(`hush ${process.argv.slice(2).filter((a) => !a.startsWith('-')).slice(0, 2).join(' ')}`);\n",
    }));
  },
};

mkdirSync(`${root}dist/client`, { recursive: true });
await build({
  entryPoints: [`${root}cli/client.ts`],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  // yargs' ESM build reads import.meta.url (for createRequire and its locale
  // folder, absent here: the English built-in texts are used).
  define: { 'import.meta.url': '__hush_bundle_url' },
  banner: { js: "#!/usr/bin/env node\nconst __hush_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  plugins: [serverOnly],
});
const kib = (statSync(out).size / 1024).toFixed(0);
if (process.env.HUSH_BUILD_VERBOSE) for (const s of [...stubbed].sort()) console.log(`  server-only, not bundled: ${s}`);
console.log(`built ${out.slice(root.length)} (${kib} KiB)`);
