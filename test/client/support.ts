import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SINGLE_FILE_CLI } from '../helpers/cli.js';

const DIST = new URL('../../', import.meta.url).pathname;
const ROOT = new URL('../../../', import.meta.url).pathname;

/** dist/bin/hush, the single executable, built by npm run build:binary (rebuilt here when older than the single file). */
export const BINARY = join(DIST, 'bin', 'hush');

export function ensureBinary(): string {
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SINGLE_FILE_CLI).mtimeMs) {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-binary.mjs')], { stdio: 'pipe' });
  }
  return BINARY;
}

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, asynchronously (a server in this process keeps answering). */
export function runProgram(argv0: string, args: string[], env: NodeJS.ProcessEnv, as: { uid?: number; gid?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv0, args, { env, ...as, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}
