import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { isatty } from 'node:tty';

/** Signals `hush run` passes on to the child. */
export const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;
export type ForwardedSignal = (typeof FORWARDED)[number];

/**
 * Signals a terminal sends to its whole foreground process group (Ctrl-C,
 * Ctrl-\\, a window resize): when hush and the child are both in it, the
 * child already has them and forwarding would deliver them twice.
 */
export const TERMINAL_SIGNALS: ReadonlySet<string> = new Set(['SIGINT', 'SIGQUIT', 'SIGWINCH']);

/** Signals that mean "stop": after one, `--watch` no longer restarts the child. */
export const STOPPING: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

export function signalNumber(sig: string): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0;
}

/** The exit status a shell reports: the code, or 128 + the number of the signal that killed it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + signalNumber(signal);
  return 1;
}

interface ProcStat {
  pgrp: number;
  ttyNr: number;
  tpgid: number;
}

function procStat(pid: number | 'self'): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp session tty_nr tpgid ..."; comm may hold spaces and parentheses.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(f[2]), ttyNr: Number(f[4]), tpgid: Number(f[5]) };
  } catch {
    return null;
  }
}

/**
 * True when a SIGINT/SIGQUIT/SIGWINCH we just received was (as far as we can
 * tell) sent by a terminal (a key, a resize) and so already reached the child: our process group
 * is the terminal's foreground group and the child is in it. Forwarding it
 * would deliver Ctrl-C twice. A signal sent with kill(1) to a background
 * `hush run`, or to one without a terminal (containers, systemd), is
 * forwarded.
 *
 * Linux reads /proc; elsewhere the rule falls back to "stdin is a TTY".
 */
export function terminalAlreadyDelivered(childPid: number | undefined): boolean {
  if (process.platform === 'linux') {
    const self = procStat('self');
    if (self) {
      if (self.ttyNr === 0 || self.tpgid !== self.pgrp) return false;
      const child = childPid ? procStat(childPid) : null;
      return child === null || child.pgrp === self.pgrp;
    }
  }
  return isatty(0);
}
