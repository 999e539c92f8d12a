import { spawn, type ChildProcess } from 'node:child_process';

export const HUSH_BIN = new URL('../../cli/main.js', import.meta.url).pathname;

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
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string; stderr: () => string; stdout: () => string; rootToken: string | null }> {
  const child = spawn(process.execPath, [HUSH_BIN, 'server', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d) => { stdout += d; });
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
  return { child, url, stderr: () => stderr, stdout: () => stdout, rootToken: tok ? tok[1] : null };
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
    child.once('exit', (code, signal) => { clearTimeout(t); res({ code, signal }); });
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
