import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HUSH_BIN } from '../helpers/cli.js';
import { seed } from '../helpers/seed.js';
import { startServer, type TestServer } from '../helpers/server.js';

export { HUSH_BIN };

export interface RunFixture {
  server: TestServer;
  /** A read-only token for app/prod. */
  token: string;
  /** A scratch directory removed by close(). */
  dir: string;
  /** Environment for the hush process: server, token, target, an empty HOME/XDG config (no profile). */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** A real server with project "app", env "prod" holding `secrets`, and a read token for it. */
export async function fixture(secrets: Record<string, string>): Promise<RunFixture> {
  const server = await startServer({ settings: { 'auth-fail-limit': '1000' } });
  await seed(server.api, { app: { prod: secrets } });
  const t = await server.api('POST', '/v1/tokens', { name: 'runner', scopes: ['read:app/prod'] });
  if (t.status !== 201 && t.status !== 200) throw new Error(`token create failed: ${t.status} ${JSON.stringify(t.body)}`);
  const dir = mkdtempSync(join(tmpdir(), 'hush-run-test-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    HUSH_ADDR: server.url,
    HUSH_TOKEN: t.body.token,
    HUSH_PROJECT: 'app',
    HUSH_ENV: 'prod',
  };
  return {
    server,
    token: t.body.token,
    dir,
    env,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function setSecret(f: RunFixture, key: string, value: string): Promise<void> {
  const r = await f.server.api('PUT', `/v1/projects/app/envs/prod/secrets/${key}`, { value });
  if (r.status !== 200 && r.status !== 201) throw new Error(`PUT ${key} failed: ${r.status}`);
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  out: string;
}

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout contains `text`. */
  waitOut(text: string | RegExp, ms?: number): Promise<void>;
  done: Promise<Result>;
}

/**
 * Starts the built `hush` binary. It runs in its own session (no controlling
 * terminal), as under a process manager or in a container, so signals we
 * send are never "typed at a terminal".
 */
export function startHush(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): Running {
  const child = spawn(process.execPath, [HUSH_BIN, ...args], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const out: Buffer[] = [];
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out.push(d);
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const kill = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, opts.timeoutMs ?? 30_000);
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(kill);
      const stdout = Buffer.concat(out);
      resolve({ code, signal, stdout, stderr: err, out: stdout.toString('utf8') });
    });
  });
  const stdout = () => Buffer.concat(out).toString('utf8');
  return {
    child,
    done,
    stdout,
    stderr: () => err,
    waitOut(text, ms = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${text} in stdout; stdout=${stdout()} stderr=${err}`)), ms);
        const check = () => {
          const s = stdout();
          if (typeof text === 'string' ? s.includes(text) : text.test(s)) {
            clearTimeout(t);
            resolve();
            return true;
          }
          return false;
        };
        if (!check()) {
          const w = () => {
            if (check()) waiters.splice(waiters.indexOf(w), 1);
          };
          waiters.push(w);
          void done.then(() => {
            if (!check()) {
              clearTimeout(t);
              reject(new Error(`hush exited before ${text} appeared; stdout=${stdout()} stderr=${err}`));
            }
          });
        }
      });
    },
  };
}

/** Runs the built `hush` binary to completion. */
export function hush(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<Result> {
  return startHush(args, env, opts).done;
}

/** A node one-liner as argv: ['node', '-e', code]. */
export const nodeChild = (code: string): string[] => [process.execPath, '-e', code];

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
