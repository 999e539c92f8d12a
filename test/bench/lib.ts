import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawnListening as spawnNode, type Listening } from '../helpers/cli.js';
import { ensureTool } from '../helpers/tools.js';

export const DIST = new URL('../../', import.meta.url).pathname;
export const HUSH_BIN = `${DIST}cli/main.js`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Peak and current resident set size of a live process, in MB (Linux /proc). */
export function rssOf(pid: number): { rssMb: number; peakMb: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS, so a later peak belongs to what ran after (Linux). */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* not Linux, or not allowed: the peak stays the lifetime peak */
  }
}

export type Spawned = Listening;

/** Spawns a node script that prints "listening on URL" (hush server or the bare baseline), with this process's environment. */
export function spawnListening(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
  return spawnNode(args, { env: { ...process.env, ...env } });
}

import { apiOk } from '../helpers/http.js';

export { apiOk as api };

/** Wall time in ms of a command, and the peak RSS of the process (getrusage of children). */
export function timeCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { ms: number; code: number | null } {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, code: r.status };
}

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

/** A project and environment holding `n` random secrets of `valueBytes` characters. */
export async function seedEnv(s: Spawned, project: string, env: string, n: number, valueBytes = 64) {
  await apiOk(s.url, s.rootToken!, 'POST', '/v1/projects', { name: project });
  await apiOk(s.url, s.rootToken!, 'POST', `/v1/projects/${project}/envs`, { name: env });
  const set: Record<string, string> = {};
  for (let i = 0; i < n; i++) set[`SECRET_${String(i).padStart(3, '0')}`] = randomBytes(valueBytes).toString('base64').slice(0, valueBytes);
  await apiOk(s.url, s.rootToken!, 'PATCH', `/v1/projects/${project}/envs/${env}/secrets`, { set });
}

/** The Lua script that gives wrk its PUT bodies and prints its results as JSON (test/bench/wrk-json.lua). */
const WRK_SCRIPT = new URL('../../../test/bench/wrk-json.lua', import.meta.url).pathname;

/** One wrk run: throughput, latency in ms, and every request that did not get a 2xx. */
export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Answers with a status of 400 or more, as wrk counts them (no route measured answers 1xx or 3xx). */
  non2xx: number;
  /** Connect, read and write errors, and requests without an answer within wrk's 2 s timeout. */
  socketErrors: number;
}

let wrkBin: string | null = null;

/**
 * Drives `url` with wrk in its own process: one thread, 32 connections,
 * `seconds` long, so the load generator is not the bench process and not the
 * bottleneck. With `put`, each request is a PUT of a distinct JSON body
 * (the run id keeps values distinct across runs).
 */
export async function wrk(
  url: string,
  opts: { seconds: number; token?: string | null; put?: string; connections?: number },
): Promise<LoadResult> {
  wrkBin ??= ensureTool('wrk');
  const args = ['-t1', `-c${opts.connections ?? 32}`, `-d${opts.seconds}s`, '--latency', '-s', WRK_SCRIPT];
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`);
  args.push(url);
  const child = spawn(wrkBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WRK_PUT: opts.put ?? '' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise<number | null>((res, rej) => {
    child.once('error', rej);
    child.once('close', res);
  });
  const line = /^WRK_JSON (\{.*\})$/m.exec(out);
  if (code !== 0 || !line) throw new Error(`wrk ${url} exited ${code}: ${(err || out).slice(-500)}`);
  const j = JSON.parse(line[1]) as {
    requests: number;
    durationUs: number;
    p50Us: number;
    p99Us: number;
    status4xx5xx: number;
    connectErrors: number;
    readErrors: number;
    writeErrors: number;
    timeouts: number;
  };
  const r: LoadResult = {
    rps: j.requests / (j.durationUs / 1e6),
    p50: j.p50Us / 1000,
    p99: j.p99Us / 1000,
    requests: j.requests,
    non2xx: j.status4xx5xx,
    socketErrors: j.connectErrors + j.readErrors + j.writeErrors + j.timeouts,
  };
  if (r.non2xx || r.socketErrors)
    process.stderr.write(`    (warning: ${url}: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors of ${r.requests})\n`);
  return r;
}
