/**
 * A real HAProxy in front of `hush server` nodes (or any HTTP servers), for
 * the cluster tests and the bench. The configuration it runs is the one
 * docs/scaling.md shows (cluster.test.ts checks that they agree).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { waitExit, waitFor } from './cli.js';
import { which } from './tools.js';

/** Why HAProxy cannot be run here, or false. */
export const HAPROXY_SKIP: string | false = which('haproxy')
  ? false
  : 'haproxy is not installed (Debian package haproxy; .ci/run installs it when run as root)';

export interface Backend {
  /** Names the frontend `<name>` and the backend `<name>_nodes`. */
  name: string;
  /** Address HAProxy listens on for this backend, HOST:PORT. */
  bind: string;
  /** Each server's HOST:PORT. */
  servers: { name: string; address: string }[];
}

/**
 * The configuration: one frontend and one backend per entry, every server
 * health-checked with GET /v1/sys/health. `statsSocket` is the admin socket
 * (`show stat`, `show servers state`).
 */
export function haproxyConfig(statsSocket: string, backends: Backend[]): string {
  const lines = [
    'global',
    '    maxconn 4096',
    `    stats socket ${statsSocket} mode 600 level admin`,
    '',
    'defaults',
    '    mode http',
    '    option forwardfor',
    '    timeout connect 2s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    timeout check 3s',
    '    retries 3',
    '    option redispatch',
  ];
  for (const b of backends) {
    lines.push(
      '',
      `frontend ${b.name}`,
      `    bind ${b.bind}`,
      `    default_backend ${b.name}_nodes`,
      '',
      `backend ${b.name}_nodes`,
      '    balance roundrobin',
      '    option httpchk GET /v1/sys/health',
      '    http-check expect status 200',
      '    default-server inter 500ms fall 2 rise 2',
      ...b.servers.map((s) => `    server ${s.name} ${s.address} check`),
    );
  }
  return lines.join('\n') + '\n';
}

export interface ServerStat {
  /** HAProxy's status: UP, DOWN, "UP 1/2" (failing, not yet down), "DOWN 1/2" (recovering), MAINT, ... */
  status: string;
  /** The last check's result, e.g. L7OK, L7STS (wrong status), L4CON (connection refused), L4TOUT. */
  checkStatus: string;
  /** HTTP status of the last check, when there was one. */
  checkCode: string;
}

export interface Haproxy {
  child: ChildProcess;
  /** http://HOST:PORT of each frontend, by backend name. */
  url: Record<string, string>;
  config: string;
  /** Each server's state, keyed `backend/server` (e.g. `hush_nodes/node1`), from `show stat` on the stats socket. */
  stats(): Promise<Map<string, ServerStat>>;
  /** Waits until HAProxy reports `server` (backend/server) with a status matching `status`. */
  waitStatus(server: string, status: RegExp, timeoutMs?: number): Promise<ServerStat>;
  stop(): Promise<void>;
}

/** Sends one command to a HAProxy stats socket and returns the whole answer. */
export function statsCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer from ${socket} to ${command}`));
    }, 5000);
    c.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    c.end(`${command}\n`);
  });
}

/** Starts HAProxy in the foreground with the configuration above, written to `dir`, and waits until every frontend accepts. */
export async function startHaproxy(dir: string, backends: Backend[]): Promise<Haproxy> {
  const bin = which('haproxy');
  if (!bin) throw new Error(HAPROXY_SKIP as string);
  const socket = join(dir, 'haproxy.sock');
  const config = haproxyConfig(socket, backends);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const child = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.on('data', (d) => {
    err += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stats = async () => {
    const csv = (await statsCommand(socket, 'show stat')).trim().split('\n');
    const head = csv[0].replace(/^# /, '').split(',');
    const col = (name: string) => head.indexOf(name);
    const out = new Map<string, ServerStat>();
    for (const line of csv.slice(1)) {
      const f = line.split(',');
      if (f[col('svname')] === 'FRONTEND' || f[col('svname')] === 'BACKEND') continue;
      out.set(`${f[col('pxname')]}/${f[col('svname')]}`, {
        status: f[col('status')],
        checkStatus: f[col('check_status')],
        checkCode: f[col('check_code')],
      });
    }
    return out;
  };
  try {
    await waitFor(
      async () => {
        if (!alive()) throw new Error(`haproxy exited with ${child.exitCode}: ${err}`);
        return (await stats().catch(() => new Map())).size > 0;
      },
      'haproxy to start',
      15_000,
    );
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    child,
    config,
    stats,
    url: Object.fromEntries(backends.map((b) => [b.name, `http://${b.bind}`])),
    async waitStatus(server, status, timeoutMs = 20_000) {
      let last: ServerStat | undefined;
      try {
        await waitFor(
          async () => {
            last = (await stats()).get(server);
            return !!last && status.test(last.status);
          },
          `haproxy to report ${server} ${status}`,
          timeoutMs,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message} (last seen: ${JSON.stringify(last)})`, { cause: e });
      }
      return last!;
    },
    async stop() {
      if (alive()) child.kill('SIGTERM');
      await waitExit(child);
    },
  };
}
