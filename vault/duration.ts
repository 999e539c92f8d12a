/** Durations that become timers stay within 24d: a Node timer holds at most 2^31-1 ms (common/timers.ts), about 24.8 days; a longer one fires at once. */
export const MAX_TIMER_MS = 24 * 86_400_000;
/** The longest token lifetime: 100 years. */
export const MAX_TTL_MS = 36_500 * 86_400_000;

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** Parses "90s", "15m", "12h", "30d", "2w", "1y" (or a compound like "1d12h") into milliseconds. Returns null when malformed. */
export function parseDuration(text: string): number | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 32) return null;
  const re = /(\d+)([smhdwy])/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed !== text.length || total <= 0 || !Number.isSafeInteger(total)) return null;
  return total;
}

export function formatDuration(ms: number): string {
  for (const [u, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${u}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
