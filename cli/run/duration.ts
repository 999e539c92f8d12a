const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * "500ms", "10s", "5m", "24h", "7d", compounds like "1h30m", or a bare
 * number of seconds. Returns null when malformed.
 */
export function parseDurationMs(text: string | number | undefined): number | null {
  if (text === undefined) return null;
  const s = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  if (!s || s.length > 32) return null;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || !Number.isFinite(total)) return null;
  return Math.round(total);
}
