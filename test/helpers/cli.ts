import { spawn, type ChildProcess } from 'node:child_process';

/** The single-file client (npm run build:client), which any Node runs without node_modules. */
export const SINGLE_FILE_CLI = new URL('../../client/hush.cjs', import.meta.url).pathname;

/**
 * The `hush` the tests drive: the full CLI, or another build named by
 * HUSH_TEST_CLI (test/client/ runs the `hush run` suite again through the
 * single-file client this way).
 */
export const FULL_CLI = new URL('../../cli/main.js', import.meta.url).pathname;
export const HUSH_BIN = process.env.HUSH_TEST_CLI || FULL_CLI;

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the built `hush` binary to completion. */
export function runHush(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HUSH_BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(t); resolve({ code, signal, stdout, stderr }); });
    child.stdin.end(opts.input ?? '');
  });
}

/** Starts `hush server` as a real process and waits until it listens. */
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string; stderr: () => string; rootToken: string | null }> {
  const child = spawn(process.execPath, [FULL_CLI, 'server', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout!.on('data', () => undefined);
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /listening on (\S+)/.exec(stderr);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`server exited with ${code}: ${stderr}`)); });
  });
  const tok = /(hush_[0-9A-Za-z]{49})/.exec(stderr);
  return { child, url, stderr: () => stderr, rootToken: tok ? tok[1] : null };
}

export function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
}
