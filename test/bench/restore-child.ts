// Restores a passphrase backup into a fresh data dir the way `hush backup
// restore` does (one pass, checked as it is written, then read back) and prints its own peak RSS.
//   node dist/test/bench/restore-child.js FILE PASSFILE DATA_DIR [DATABASE_URL]
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../vault/config.js';
import { restoreBackupFile, silentLogger } from '../../vault/backup/local.js';

const [file, passFile, dataDir, databaseUrl] = process.argv.slice(2);
const passphrase = readFileSync(passFile, 'utf8');
const cfg = loadConfig({ 'data-dir': dataDir, ...(databaseUrl ? { 'database-url': databaseUrl } : {}) }, {});
const r = await restoreBackupFile(cfg, file, { passphrase }, silentLogger);
process.stdout.write(JSON.stringify({ counts: r.counts, verified: r.verified && r.verify.ok, maxRssMb: ownPeakRssMb() }) + '\n');

/**
 * This process's own peak RSS. Linux: VmHWM, the high-water mark of this
 * process's memory since its exec. Not getrusage's maxRSS, which Linux
 * carries over from the parent at fork: a bench process holding 1 GB made
 * every restore it spawned report 1 GB.
 */
function ownPeakRssMb(): number {
  try {
    const kb = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}
