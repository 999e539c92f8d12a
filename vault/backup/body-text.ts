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
 * Memory: one page of rows and one chunk of text at a time. The rows come
 * from one ordered stream for the whole vault (backup-store.ts dataPages:
 * one cursor on PostgreSQL), each secret followed by its versions.
 */
const CHUNK = 64 * 1024;
const J = JSON.stringify;

export class BodyText {
  readonly counts: BackupCounts = emptyCounts();
  constructor(
    private readonly tx: Tx,
    private readonly deps: DumpDeps,
    private readonly format = BACKUP_FORMAT,
  ) {}

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
    const envs = await store.allEnvs(tx);
    // One stream of rows for every environment, in order: each secret, with its versions after it.
    const envIds = envs.map((e) => e.id);
    const pages = store.dataPages(envIds, tx)[Symbol.asyncIterator]();
    let rows: any[][] = [];
    let ri = 0;
    let more = true;
    let ei = 0;
    try {
      for (const p of await store.projects(tx)) {
        const P = J(p.name);
        buf += `{"t":"project","name":${P},"createdAt":${p.createdAt}}\n`;
        counts.projects++;
        let cipher: SecretCipher | null = null;
        let cipherVersion = -1;
        for (; ei < envs.length && envs[ei].projectId === Number(p.id); ei++) {
          const e = envs[ei];
          const E = J(e.name);
          buf += `{"t":"env","project":${P},"name":${E},"revision":${e.revision},"createdAt":${e.createdAt}}\n`;
          counts.envs++;
          let secret: string | null = null;
          let N = '';
          for (;;) {
            if (ri === rows.length) {
              if (!more) break;
              const r = await pages.next();
              if (r.done) {
                more = false;
                break;
              }
              rows = r.value;
              ri = 0;
            }
            const row = rows[ri];
            if (Number(row[0]) !== e.id) break;
            ri++;
            const name: string = row[1];
            if (name !== secret) {
              secret = name;
              N = J(name);
              buf +=
                `{"t":"secret","project":${P},"env":${E},"name":${N},"version":${Number(row[2])},` +
                `"deleted":${!!row[3]},"createdAt":${Number(row[4])},"updatedAt":${Number(row[5])}}\n`;
              counts.secrets++;
            }
            if (row[6] === null) continue; // a secret without versions
            const version = Number(row[6]);
            const deleted = !!row[10];
            let value = 'null';
            if (!deleted) {
              const dekVersion = Number(row[9]);
              if (cipher === null || cipherVersion !== dekVersion) {
                cipher = await keys.cipher(p.id, dekVersion, tx);
                cipherVersion = dekVersion;
              }
              value = J(cipher.decrypt(row[7], row[8], secretAd(p.id, e.id, name, version), `${p.name}/${e.name}/${name} v${version}`));
            }
            buf +=
              `{"t":"version","project":${P},"env":${E},"name":${N},"version":${version},"deleted":${deleted},` +
              `"value":${value},"createdBy":${J(row[11])},"createdAt":${Number(row[12])}${revisionText(row[13])}}\n`;
            counts.versions++;
            if (buf.length > CHUNK) {
              yield buf;
              buf = '';
            }
          }
        }
      }
      if (ei < envs.length || ri < rows.length || (more && !(await pages.next()).done))
        throw new Error('backup dump: environment or secret rows do not follow their project and environment');
    } finally {
      await pages.return?.(undefined);
    }
    for await (const l of tailLines(tx, deps, this.format)) {
      buf += J(l) + '\n';
      countLine(counts, l);
      if (buf.length > CHUNK) {
        yield buf;
        buf = '';
      }
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
