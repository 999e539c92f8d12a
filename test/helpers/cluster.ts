/**
 * Several real `hush server` processes on one fresh PostgreSQL database, as
 * behind a load balancer: each with its own data dir and its own master key
 * file (same key), like separate machines.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnServer, type Listening } from './cli.js';
import { apiFor, type Api } from './http.js';
import { observe, remember } from './leaks.js';
import { freshPgDatabase, tempDir } from './server.js';

export interface ClusterNode extends Listening {
  name: string;
  dataDir: string;
  keyFile: string;
  /** Requests to this node, with the root token unless another (or null) is given. */
  api: Api;
}

export interface Cluster {
  dbUrl: string;
  rootToken: string;
  nodes: ClusterNode[];
  /** Starts one more node on the same database (same key unless `key` is given). */
  addNode(opts?: { key?: string; args?: string[] }): Promise<ClusterNode>;
  /** Stops a node (if it runs) and starts it again on its data dir and key file, as they are now. */
  restart(node: ClusterNode): Promise<ClusterNode>;
  close(): Promise<void>;
}

/** A fresh master key as a key file holds it (base64 of 32 bytes); remembered by the leak scan. */
export function newMasterKey(): string {
  return remember(randomBytes(32).toString('base64'));
}

/** Replaces a key file's content, mode 0600, as an operator (or a secret manager) would. */
export function writeKeyFile(file: string, key: string): void {
  writeFileSync(file, key + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * `nodes` servers on a fresh database; the first one initialises the vault.
 * `args` go to every node (limits, log level...).
 */
export async function startCluster(opts: { nodes?: number; args?: string[]; key?: string } = {}): Promise<Cluster> {
  const db = await freshPgDatabase();
  if (!db) throw new Error('startCluster needs HUSH_TEST_PG_URL');
  const key = opts.key ?? newMasterKey();
  const dirs: string[] = [];
  const nodes: ClusterNode[] = [];
  let rootToken = '';

  async function spawnNode(name: string, dataDir: string, keyFile: string, args: string[]): Promise<ClusterNode> {
    const l = await spawnServer(
      [
        '--database-url',
        db!.url,
        '--data-dir',
        dataDir,
        '--listen',
        '127.0.0.1:0',
        '--master-key-file',
        keyFile,
        ...(opts.args ?? []),
        ...args,
      ],
      {},
      {
        onExit: (out, err) => {
          observe(`node ${name} stdout`, out);
          observe(
            `node ${name} stderr`,
            err.replace(/Root token \(shown once, store it now\):\s+hush_[0-9A-Za-z]+/, 'Root token: [banner]'),
          );
        },
      },
    );
    if (l.rootToken) rootToken = remember(l.rootToken);
    return Object.assign(l, { name, dataDir, keyFile, api: apiFor(l.url, rootToken) });
  }

  async function addNode(o: { key?: string; args?: string[] } = {}): Promise<ClusterNode> {
    const name = String.fromCharCode(65 + nodes.length); // A, B, C...
    const dir = tempDir(`hush-node${name}-`);
    dirs.push(dir);
    const keyFile = join(dir, 'master.key');
    writeKeyFile(keyFile, o.key ?? key);
    const node = await spawnNode(name, join(dir, 'data'), keyFile, o.args ?? []);
    nodes.push(node);
    return node;
  }

  async function restart(node: ClusterNode): Promise<ClusterNode> {
    await node.stop();
    const again = await spawnNode(node.name, node.dataDir, node.keyFile, []);
    nodes[nodes.indexOf(node)] = again;
    return again;
  }

  try {
    for (let i = 0; i < (opts.nodes ?? 2); i++) await addNode();
  } catch (e) {
    for (const n of nodes) await n.kill9();
    await db.drop();
    throw e;
  }
  for (const n of nodes) n.api = apiFor(n.url, rootToken);

  return {
    dbUrl: db.url,
    rootToken,
    nodes,
    addNode,
    restart,
    async close() {
      for (const n of nodes) await n.stop().catch(() => n.kill9());
      await db.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}
