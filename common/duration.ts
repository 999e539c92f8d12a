/**
 * The one duration grammar of Hush, for the server (flags, token and role TTLs, rotation periods) and the CLI
 * (`hush run --watch-grace`, `--fallback-max-age`): a number with a unit, or several ("1h30m"). Units: ms, s, m, h,
 * d, w, y (365 days); numbers may have decimals ("1.5h"). A bare number is refused unless the caller opts in to
 * reading it as seconds, as `sleep 10` does.
 */
/** Durations that become timers stay within 24d: a Node timer holds at most 2^31-1 ms (common/timers.ts), about 24.8 days; a longer one fires at once. */
export const MAX_TIMER_MS = 24 * 86_400_000;
/** The longest token lifetime: 100 years. */
export const MAX_TTL_MS = 36_500 * 86_400_000;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

export interface DurationOptions {
  /** A plain number ("10") is that many seconds. */
  bareSeconds?: boolean;
  /** "0s" is a duration (otherwise a zero total is refused, as a TTL or period of nothing is a mistake). */
  allowZero?: boolean;
}

/** Whole milliseconds, or null when the text is not a duration of this grammar. */
export function parseDuration(text: string | number | undefined, opts: DurationOptions = {}): number | null {
  if (text === undefined || (typeof text !== 'string' && typeof text !== 'number')) return null;
  const s = String(text);
  if (s.length === 0 || s.length > 32) return null;
  let total = 0;
  if (/^\d+(\.\d+)?$/.test(s)) {
    if (!opts.bareSeconds) return null;
    total = Number(s) * 1000;
  } else {
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;
    let consumed = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      total += Number(m[1]) * UNITS[m[2]];
      consumed = re.lastIndex;
    }
    if (consumed !== s.length) return null;
  }
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms) || ms < 0 || (ms === 0 && !opts.allowZero)) return null;
  return ms;
}

/** The shortest exact form in d, h or m, else seconds: 86400000 -> "1d", 5400000 -> "90m". */
export function formatDuration(ms: number): string {
  for (const [u, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${u}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
