// Builds the web UI (vault/ui) into dist/ui/: one minified ES module
// (Preact + htm + the pages, and dotenv's parser for the bulk paste), one
// stylesheet, one page. Nothing loads from anywhere else (docs/ui.md).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/ui/`;
mkdirSync(out, { recursive: true });
// dotenv's parse() is plain JavaScript; the Node built-ins its file imports for loading files are never called here.
const nodeBuiltins = {
  name: 'node-builtins-unused',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(fs|path|os|crypto|url)$/ }, (a) => ({ path: a.path, namespace: 'unused' }));
    b.onLoad({ filter: /.*/, namespace: 'unused' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};
await build({
  entryPoints: [`${root}vault/ui/src/main.js`],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  outfile: `${out}app.js`,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [nodeBuiltins],
  // The same file's loaders read `process`; a module-scoped stand-in keeps them from failing should anything touch them.
  banner: { js: 'const process={env:{},cwd:()=>"/"};' },
});
copyFileSync(`${root}vault/ui/app.css`, `${out}app.css`);
copyFileSync(`${root}vault/ui/index.html`, `${out}index.html`);
const size = (f) => {
  const b = readFileSync(`${out}${f}`);
  return `${f} ${(b.length / 1024).toFixed(1)} KiB (${(gzipSync(b, { level: 9 }).length / 1024).toFixed(1)} KiB gzipped)`;
};
console.log(`built dist/ui/: ${['app.js', 'app.css', 'index.html'].map(size).join(', ')}`);
