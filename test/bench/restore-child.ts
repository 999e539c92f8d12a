// Restores a passphrase backup into a fresh data dir the way `hush backup
// restore` does (verify pass, then restore pass) and prints its own peak RSS.
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../vault/config.js';
import { restoreBackupFile } from '../../vault/backup/local.js';
import { createLogger } from '../../vault/server.js';

const [file, passFile, dataDir] = process.argv.slice(2);
const passphrase = readFileSync(passFile, 'utf8');
const cfg = loadConfig({ 'data-dir': dataDir }, {});
const r = await restoreBackupFile(cfg, file, { passphrase }, createLogger('silent'));
process.stdout.write(JSON.stringify({ counts: r.counts, verified: r.verified && r.verify.ok, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
