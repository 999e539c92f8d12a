/**
 * The parsers of the settings table (settings.ts): each turns the text of a
 * flag or HUSH_* variable into its value, or throws BadValue with what is
 * wrong; config.ts turns that into a one-line ConfigError naming the setting.
 */
import { resolve } from 'node:path';
import { formatDuration, MAX_TIMER_MS, MAX_TTL_MS, parseDuration } from '../common/duration.js';
import type { Config, ListenAddress } from './config.js';
import { parseCidr } from './services/token/cidr.js';

export type Parser<T> = (raw: string) => T;

export interface Setting<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  doc: string;
  default: Config[K];
  parse: Parser<Config[K]>;
}

export class BadValue extends Error {}

export const str: Parser<string> = (v) => {
  if (v.trim() === '') throw new BadValue('must not be empty');
  return v;
};
export const timeZone: Parser<string> = (v) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v });
  } catch {
    throw new BadValue('not a time zone; use an IANA name such as UTC or Europe/Berlin');
  }
  return v;
};
export const nullableStr: Parser<string | null> = (v) => str(v);
export const path: Parser<string> = (v) => resolve(str(v));
export const nullablePath: Parser<string | null> = (v) => path(v);
export const intIn =
  (min: number, max: number): Parser<number> =>
  (v) => {
    if (!/^\d+$/.test(v.trim())) throw new BadValue(`must be a whole number between ${min} and ${max}`);
    const n = Number(v.trim());
    if (n < min || n > max) throw new BadValue(`must be between ${min} and ${max}`);
    return n;
  };
export const bytes: Parser<number> = (v) => {
  const m = /^(\d+)\s*(b|kb|kib|k|mb|mib|m)?$/i.exec(v.trim());
  if (!m) throw new BadValue('must be a size such as 65536, 64KiB or 8MiB');
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1;
  const n = Number(m[1]) * mult;
  if (n < 1 || n > 1024 * 1024 * 1024) throw new BadValue('must be between 1 byte and 1GiB');
  return n;
};
export const bytesOrZero: Parser<number> = (v) => (/^0+\s*[a-z]*$/i.test(v.trim()) ? 0 : bytes(v));
export const duration: Parser<number> = (v) => {
  const ms = parseDuration(v.trim());
  if (ms === null) throw new BadValue('must be a duration such as 90s, 15m, 12h, 30d');
  return ms;
};
/** A duration with an upper bound, and why it is there. */
export const durationUpTo =
  (max: number, why: string): Parser<number> =>
  (v) => {
    const ms = duration(v);
    if (ms > max) throw new BadValue(`must be at most ${formatDuration(max)} (${why})`);
    return ms;
  };
/** A duration that becomes a timer: Node's timers hold at most 2^31-1 ms (24.8 days); a longer one fires at once. */
export const timer = durationUpTo(MAX_TIMER_MS, "it is a timer, and Node's timers hold at most about 24.8 days");
export const timerOrZero: Parser<number> = (v) => (/^0+\s*[a-z]*$/i.test(v.trim()) ? 0 : timer(v));
/** A token lifetime: an expiry date must stay a date (and far beyond any sane use). */
export const ttl = durationUpTo(MAX_TTL_MS, 'the longest token lifetime Hush accepts');
export const bool: Parser<boolean> = (v) => {
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  throw new BadValue('must be true or false');
};
export const list: Parser<string[]> = (v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
/** Proxy addresses for --trust-proxy: IPs or CIDRs (and proxy-addr's loopback/linklocal/uniquelocal). */
export const cidrs: Parser<string[]> = (v) => {
  const items = list(v);
  items.forEach((item, i) => {
    if (item === 'loopback' || item === 'linklocal' || item === 'uniquelocal') return;
    try {
      parseCidr(item);
    } catch {
      throw new BadValue(`entry ${i + 1} is not an IP address or CIDR such as 10.0.0.0/8 (without an IPv6 zone such as %eth0)`);
    }
  });
  return items;
};

export function parseListen(v: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v.trim());
  if (!m) throw new BadValue('must be HOST:PORT, for example 127.0.0.1:8420');
  const port = Number(m[3]);
  if (port > 65535) throw new BadValue('port must be 0-65535');
  return { host: m[1] ?? m[2], port };
}

export function def<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}
