import { spawn, type ChildProcess } from 'node:child_process';
import { cliReachableBy } from './reachable.js';

/** The single-file client (npm run build:client), which any Node runs without node_modules. */
export const SINGLE_FILE_CLI = new URL('../../client/hush.cjs', import.meta.url).pathname;

/**
 * The `hush` the tests drive: the full CLI, or another build named by
 * HUSH_TEST_CLI (test/client/ runs the `hush run` suite again through the
 * single-file client this way).
 */
export const FULL_CLI = new URL('../../cli/main.js', import.meta.url).pathname;
export const HUSH_BIN = process.env.HUSH_TEST_CLI || FULL_CLI;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `hush` binary to completion. */
export function runHush(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HUSH_BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A process that printed "listening on URL" (hush server, or the bench's bare baseline). */
export interface Listening {
  child: ChildProcess;
  url: string;
  /** The root token, when this start initialised the vault and printed it. */
  rootToken: string | null;
  stdout(): string;
  stderr(): string;
  alive(): boolean;
  /** SIGTERM, and wait for the exit (see waitExit: a process that does not exit fails); returns the exit code. */
  stop(): Promise<number | null>;
  /** kill -9, and wait for the process to be gone. */
  kill9(): Promise<void>;
}

export interface SpawnOptions {
  /** The whole environment of the child. */
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Called with everything the process wrote, once it has exited (started or not). */
  onExit?: (stdout: string, stderr: string) => void;
}

/**
 * Runs `node ...nodeArgs` and resolves once it prints "listening on URL" on
 * stdout or stderr. Rejects when it exits first, or does not listen within
 * 30 s (then it is killed); the error carries its exit code and output.
 */
export function spawnListening(nodeArgs: string[], opts: SpawnOptions): Promise<Listening> {
  const child = spawn(process.execPath, nodeArgs, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid });
  let out = '';
  let err = '';
  const exited = new Promise<void>((res) =>
    child.once('exit', () => {
      opts.onExit?.(out, err);
      res();
    }),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      settled = true;
      clearTimeout(t);
      void exited.then(() => reject(Object.assign(new Error(`${why}: ${err}`), { code: child.exitCode, stdout: out, stderr: err })));
    };
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      fail('did not start within 30 s');
    }, 30_000);
    const check = () => {
      const m = /listening on (http\S+)/.exec(err) ?? /listening on (http\S+)/.exec(out);
      if (!m || settled) return;
      settled = true;
      clearTimeout(t);
      const tok = /(hush_[0-9A-Za-z]{49})/.exec(err);
      resolve({
        child,
        url: m[1],
        rootToken: tok ? tok[1] : null,
        stdout: () => out,
        stderr: () => err,
        alive,
        async stop() {
          if (alive()) child.kill('SIGTERM');
          return (await waitExit(child)).code;
        },
        async kill9() {
          if (alive()) child.kill('SIGKILL');
          await exited;
        },
      });
    };
    child.stdout.on('data', (d) => {
      out += d;
      check();
    });
    child.stderr.on('data', (d) => {
      err += d;
      check();
    });
    child.once('exit', (code) => {
      if (!settled) fail(`exited with ${code} before listening`);
    });
  });
}

/** Starts `hush server` as a real process and waits until it listens. */
export function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}, opts: Omit<SpawnOptions, 'env'> = {}): Promise<Listening> {
  // As another user, from a copy that user can reach when the checkout is private (reachable.ts).
  const bin = opts.uid !== undefined && opts.uid !== process.getuid?.() ? cliReachableBy(opts.uid) : FULL_CLI;
  return spawnListening([bin, 'server', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, ...opts });
}

/**
 * Resolves when the child exits; rejects (and SIGKILLs it) after `timeoutMs`,
 * so a process that never exits fails its test instead of hanging the run.
 */
export function waitExit(child: ChildProcess, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((res, rej) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      res({ code, signal });
    });
  });
}

/**
 * Polls `cond` until it holds: synchronisation on an observable event instead
 * of a sleep. Fails with `what` after `timeoutMs`.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
