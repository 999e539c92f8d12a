// Writes a synthetic plaintext backup (the NDJSON a dump writes, format 5: each version with its env revision, the body's hash last)
// with `versions` secret versions: 1,000 projects (or fewer) of one env each,
// one version per secret, values of 32 characters. The bench encrypts it with
// `gpg --symmetric` and restores it to seed a vault of that size far faster
// than seeding through the API. It holds one root token, printed as JSON
// ({"rootToken": ...}); writes `out`.
//
//   node dist/test/bench/make-backup.js OUT VERSIONS
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { BACKUP_FORMAT } from '../../vault/backup/dump.js';
import { randomTokenString } from '../../vault/crypto/keyring.js';
import { getSodium, keyedBlake2b } from '../../vault/crypto/sodium.js';

const [out, nArg] = process.argv.slice(2);
const versions = Number(nArg);
const projects = Math.min(1000, versions);
const perProject = Math.ceil(versions / projects);
const now = Date.now();
const h = createHash('sha256');
const body: string[] = [];
const counts = { projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 };
const w = createWriteStream(out + '.body');
let buf = '';
async function line(o: Record<string, unknown>) {
  const s = JSON.stringify(o) + '\n';
  h.update(s);
  buf += s;
  if (buf.length > 1 << 20) {
    if (!w.write(buf)) await once(w, 'drain');
    buf = '';
  }
}
const pepper = randomBytes(32);
await line({ t: 'key', purpose: 'token-pepper', version: 1, key: pepper.toString('base64') });
await line({ t: 'key', purpose: 'audit-mac', version: 1, key: randomBytes(32).toString('base64') });
const rootToken = await randomTokenString();
const rootHash = keyedBlake2b(await getSodium(), new Uint8Array(pepper))(null, rootToken);
let left = versions;
const pname = (p: number) => `p${String(p).padStart(5, '0')}`;
for (let p = 0; p < projects && left > 0; p++) {
  await line({ t: 'project', name: pname(p), createdAt: now });
  counts.projects++;
  await line({ t: 'env', project: pname(p), name: 'prod', revision: 1, createdAt: now });
  counts.envs++;
  const n = Math.min(perProject, left);
  for (let i = 0; i < n; i++) {
    const name = `SECRET_${String(i).padStart(6, '0')}`;
    await line({ t: 'secret', project: pname(p), env: 'prod', name, version: 1, deleted: false, createdAt: now, updatedAt: now });
    await line({
      t: 'version',
      project: pname(p),
      env: 'prod',
      name,
      version: 1,
      deleted: false,
      value: randomBytes(24).toString('base64'),
      createdBy: 'tok_bench',
      createdAt: now,
      revision: 1,
    });
    counts.secrets++;
    counts.versions++;
  }
  left -= n;
}
await line({
  t: 'token',
  id: 'tok_benchroot0000000000',
  name: 'root',
  description: 'bench root token',
  hash: rootHash.toString('base64'),
  scopes: ['root'],
  parentId: null,
  cidrs: [],
  createdAt: now,
  expiresAt: null,
  revokedAt: null,
  lastUsedAt: null,
});
counts.tokens++;
void body;
if (buf) w.write(buf);
// Format 5: the body's hash in the last line.
if (BACKUP_FORMAT !== 5) throw new Error(`make-backup writes format 5, this release's is ${String(BACKUP_FORMAT)}`);
w.write(JSON.stringify({ t: 'end', bodySha256: h.digest('hex') }) + '\n');
w.end();
await once(w, 'finish');
const header = {
  type: 'hush-backup',
  format: BACKUP_FORMAT,
  createdAt: new Date(now).toISOString(),
  vaultId: 'bench',
  source: 'sqlite',
  counts,
};
const { readFileSync, writeFileSync, unlinkSync } = await import('node:fs');
const hw = createWriteStream(out);
hw.write(JSON.stringify(header) + '\n');
const { createReadStream } = await import('node:fs');
await new Promise<void>((res, rej) =>
  createReadStream(out + '.body')
    .on('error', rej)
    .on('end', () => res())
    .pipe(hw, { end: false }),
);
hw.end();
await once(hw, 'finish');
unlinkSync(out + '.body');
void readFileSync;
void writeFileSync;
process.stdout.write(JSON.stringify({ rootToken }) + '\n');
