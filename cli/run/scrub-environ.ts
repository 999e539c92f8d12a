/**
 * Blanks hush's own credentials in the process's initial environment block.
 *
 * /proc/PID/environ shows the bytes the kernel placed on the stack at exec
 * (from env_start to env_end in /proc/PID/stat), whatever the process did to
 * its environment since: deleting process.env.HUSH_TOKEN changes nothing
 * there. Any process of the same user can read that file, and the command
 * `hush run` starts runs as the same user, so it could read hush's token
 * from /proc/$PPID/environ. This overwrites, in place, the value bytes of
 * each credential variable with NULs, through /proc/self/mem (a process may
 * always write its own memory). The file then shows `HUSH_TOKEN=` and
 * nothing after it. docs/run.md says what this does not cover.
 *
 * Linux only; elsewhere (and when /proc is missing) it reports why it did
 * nothing, and the caller decides whether to warn.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';

/** The variables that carry hush's own credentials (never the token file's path: that is no secret). */
export const CREDENTIAL_VARIABLES = ['HUSH_TOKEN', 'HUSH_JWT'] as const;

/** The largest initial environment read (execve allows about 2 MiB of arguments and environment together). */
const MAX_ENV_BLOCK = 8 * 1024 * 1024;

export interface ScrubResult {
  scrubbed: string[];
  skipped: string | null;
}

/** Where the initial environment lies in this process's memory: fields 50 and 51 of /proc/self/stat (Linux 3.5+). */
function envBlock(): { start: number; end: number } | null {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
  const start = Number(fields[50 - 3]);
  const end = Number(fields[51 - 3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start || end - start > MAX_ENV_BLOCK) return null;
  return { start, end };
}

export function scrubInitialEnvironment(names: readonly string[] = CREDENTIAL_VARIABLES): ScrubResult {
  if (process.platform !== 'linux') return { scrubbed: [], skipped: `not on Linux (${process.platform})` };
  let fd: number | null = null;
  try {
    const block = envBlock();
    if (!block) return { scrubbed: [], skipped: 'the environment block is not listed in /proc/self/stat' };
    const len = block.end - block.start;
    const buf = Buffer.alloc(len);
    fd = openSync('/proc/self/mem', 'r+');
    if (readSync(fd, buf, 0, len, block.start) !== len) return { scrubbed: [], skipped: 'the environment block could not be read whole' };
    const scrubbed: string[] = [];
    for (let off = 0; off < len;) {
      let nul = buf.indexOf(0, off);
      if (nul < 0) nul = len;
      for (const name of names) {
        const prefix = `${name}=`;
        if (nul - off > prefix.length && buf.toString('latin1', off, off + prefix.length) === prefix) {
          const from = off + prefix.length;
          const zeros = Buffer.alloc(nul - from);
          if (writeSync(fd, zeros, 0, zeros.length, block.start + from) !== zeros.length)
            return { scrubbed, skipped: `${name} could not be overwritten` };
          scrubbed.push(name);
        }
      }
      off = nul + 1;
    }
    return { scrubbed, skipped: null };
  } catch (e) {
    return { scrubbed: [], skipped: `/proc/self/mem: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
