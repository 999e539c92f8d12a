import { createHash } from 'node:crypto';
import { secretAd, type SecretCipher } from '../crypto/keyring.js';
import type { Tx } from '../store/db.js';
import { BACKUP_FORMAT, countLine, emptyCounts, keyLines, tailLines, type BackupCounts, type DumpDeps } from './dump.js';

/**
 * A backup body as NDJSON text, written straight from the store's raw rows:
 * the same bytes as `JSON.stringify` of each of dump.ts's bodyLines()
 * objects (test/backup checks the two agree), without an object per secret
 * or version. The data section (secrets and versions, nearly every line of a
 * large vault) is written here; the keys and the sections after the data
 * (tokens, roles, audit) come from dump.ts's generators.
 *
 * Memory: one page of rows and one chunk of text at a time.
 */
const CHUNK = 64 * 1024;
const J = JSON.stringify;

export class BodyText {
  readonly counts: BackupCounts = emptyCounts();
  constructor(private readonly tx: Tx, private readonly deps: DumpDeps, private readonly format = BACKUP_FORMAT) {}

  /** The body in chunks of about CHUNK characters. */
  async *chunks(): AsyncGenerator<string> {
    const { tx, deps } = this;
    const { keys, store } = deps;
    const counts = this.counts;
    // Format 4 on: the env revision that wrote each version (env history), last, as dump.ts writes it.
    const withRevision = this.format >= 4;
    const revisionText = (r: unknown) => (withRevision ? `,"revision":${r == null ? 'null' : Number(r)}` : '');
    let buf = '';
    for await (const l of keyLines(tx, deps)) buf += J(l) + '\n';
    for (const p of await store.projects(tx)) {
      const P = J(p.name);
      buf += `{"t":"project","name":${P},"createdAt":${p.createdAt}}\n`;
      counts.projects++;
      let cipher: SecretCipher | null = null;
      let cipherVersion = -1;
      for (const e of await store.envs(p.id, tx)) {
        const E = J(e.name);
        buf += `{"t":"env","project":${P},"name":${E},"revision":${e.revision},"createdAt":${e.createdAt}}\n`;
        counts.envs++;
        // Two cursors in (name, version) order: each secret's versions follow it.
        let vrows: any[][] = await store.versionRows(e.id, null, 0, tx);
        let vi = 0;
        let srows: any[][] = await store.secretRows(e.id, null, tx);
        for (;;) {
          for (const s of srows) {
            const name: string = s[0];
            const N = J(name);
            buf +=
              `{"t":"secret","project":${P},"env":${E},"name":${N},"version":${Number(s[1])},"deleted":${!!s[2]},` +
              `"createdAt":${Number(s[3])},"updatedAt":${Number(s[4])}}\n`;
            counts.secrets++;
            for (;;) {
              if (vi === vrows.length) {
                if (vrows.length < store.pageSizes.versions) break;
                const last = vrows[vrows.length - 1];
                vrows = await store.versionRows(e.id, last[0], Number(last[1]), tx);
                vi = 0;
                if (vrows.length === 0) break;
              }
              const v = vrows[vi];
              if (v[0] !== name) break;
              vi++;
              const version = Number(v[1]);
              const deleted = !!v[5];
              let value = 'null';
              if (!deleted) {
                const dekVersion = Number(v[4]);
                if (cipher === null || cipherVersion !== dekVersion) { cipher = await keys.cipher(p.id, dekVersion, tx); cipherVersion = dekVersion; }
                value = J(cipher.decrypt(v[2], v[3], secretAd(p.id, e.id, name, version), `${p.name}/${e.name}/${name} v${version}`));
              }
              buf +=
                `{"t":"version","project":${P},"env":${E},"name":${N},"version":${version},"deleted":${deleted},"value":${value},` +
                `"createdBy":${J(v[6])},"createdAt":${Number(v[7])}${revisionText(v[8])}}\n`;
              counts.versions++;
            }
            if (buf.length > CHUNK) { yield buf; buf = ''; }
          }
          if (srows.length < store.pageSizes.secrets) break;
          srows = await store.secretRows(e.id, srows[srows.length - 1][0], tx);
        }
        if (vi === vrows.length && vrows.length === store.pageSizes.versions) { const last = vrows[vi - 1]; vrows = await store.versionRows(e.id, last[0], Number(last[1]), tx); vi = 0; }
        if (vi < vrows.length) throw new Error(`backup dump: version rows of ${p.name}/${e.name}/${vrows[vi][0]} do not follow their secret`);
      }
    }
    for await (const l of tailLines(tx, deps, this.format)) {
      buf += J(l) + '\n';
      countLine(counts, l);
      if (buf.length > CHUNK) { yield buf; buf = ''; }
    }
    if (buf) yield buf;
  }

  /** SHA-256 and counts of the body, without keeping it. */
  async digest(): Promise<{ sha256: string; counts: BackupCounts }> {
    const h = createHash('sha256');
    for await (const c of this.chunks()) h.update(c);
    return { sha256: h.digest('hex'), counts: this.counts };
  }
}
