import type { DestinationStream } from 'pino';

/**
 * --log-format pretty: each pino JSON line rewritten as one readable line,
 * `12:00:01.234 INFO  message key=value ...`. Hand-written (a few lines)
 * rather than pino-pretty, whose dependency tree is larger than this. It
 * sits after pino's redaction and the token scrub (server.ts), so it only
 * ever sees lines that are already clean.
 */
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, shown in the line's head or not at all. */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'svc']);

const value = (v: unknown): string => {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
};

// Control characters in a message would let it forge lines or move a terminal's cursor: such a message is shown quoted.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f]/;

export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (o === null || typeof o !== 'object') return `${json.trimEnd()}\n`;
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = LEVELS[o.level as number] ?? (typeof o.level === 'string' ? o.level : '');
  const fields = Object.keys(o)
    .filter((k) => !HEAD.has(k))
    .map((k) => `${k}=${value(o[k])}`);
  return `${[t, level, typeof o.msg === 'string' ? (CONTROL.test(o.msg) ? JSON.stringify(o.msg) : o.msg) : '', ...fields].filter(Boolean).join(' ')}\n`;
}

/** A destination that writes pretty lines to `out`. */
export function prettyDestination(out: { write(s: string): unknown }): DestinationStream {
  return {
    write: (line: string) => {
      out.write(prettyLine(line));
    },
  };
}
