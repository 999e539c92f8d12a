/**
 * Memory measurements for the bounded-memory tests. Each one either measures
 * or says why it cannot: a test whose precondition is missing is skipped with
 * that reason, never passed on a reading of 0.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PROC_SKIP } from './preconditions.js';

/** `global.gc` without `--expose-gc` on the command line (test-only trick); always available on Node 20. */
export function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A field of /proc/PID/status in bytes (VmHWM: peak RSS, VmRSS: current RSS); throws when it cannot be read. */
export function procStatus(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]) * 1024;
}

export { PROC_SKIP };

/** Resets a process's peak RSS to its current RSS (Linux: write 5 to clear_refs), so a phase's peak can be read alone. */
export function resetHwm(pid: number | 'self'): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Why a phase's peak RSS cannot be measured alone here, or false when clear_refs is writable. */
export const HWM_RESET_SKIP: string | false =
  PROC_SKIP ||
  (() => {
    try {
      resetHwm('self');
      return false;
    } catch (e) {
      return `the peak RSS of a phase needs a writable /proc/PID/clear_refs (${(e as NodeJS.ErrnoException).code})`;
    }
  })();

/**
 * Samples a child's peak RSS while it runs. `peak()` is the highest VmHWM read,
 * or throws when no sample could be read (the child exited before the first one).
 */
export function samplePeakRss(pid: number): { sample: () => void; peak: () => number } {
  let peak = 0;
  let reads = 0;
  return {
    sample() {
      // VmHWM is the high-water mark, so any sample after the peak reads it.
      try {
        peak = Math.max(peak, procStatus(pid, 'VmHWM'));
        reads++;
      } catch {
        /* exited */
      }
    },
    peak() {
      if (reads === 0) throw new Error(`peak RSS of process ${pid} was never read from /proc`);
      return peak;
    },
  };
}
