// Restores a passphrase backup into a fresh data dir and prints its own peak RSS.
import { createReadStream, readFileSync } from 'node:fs';
import { loadConfig } from '../../vault/config.js';
import { decryptBackupStream } from '../../vault/backup/pgp.js';
import { readLines, restoreBackup, verifyBackup } from '../../vault/backup/restore.js';
import { createLogger } from '../../vault/server.js';
import { openConfiguredDb } from '../../vault/vault.js';

const [file, passFile, dataDir] = process.argv.slice(2);
const passphrase = readFileSync(passFile, 'utf8');
const verified = await verifyBackup(readLines((await decryptBackupStream(createReadStream(file), { passphrase })).plain));
const cfg = loadConfig({ 'data-dir': dataDir }, {});
const opened = openConfiguredDb(cfg);
const r = await restoreBackup(cfg, opened, readLines((await decryptBackupStream(createReadStream(file), { passphrase })).plain), createLogger('silent'));
await opened.db.destroy();
process.stdout.write(JSON.stringify({ counts: r.counts, verified: r.verified && verified.ok, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
