import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawnListening as spawnNode, type Listening } from '../helpers/cli.js';

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
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* not Linux, or not allowed: the peak stays the lifetime peak */ }
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
