/**
 * The leak registry of the tests: every secret value and token a test
 * handles is remembered; every log line, error body and audit event that
 * must hold none is observed; the closing check of a file scans them all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { capturedLogs } from './server.js';

/** Every secret value this suite writes carries this marker, so the scan can find it cheaply. */
const MARK = 'SECRETv';
const MARKED = /SECRETv[0-9a-z]{14}/g;
/** Anything token-shaped; the server's own redaction uses the same rule. */
const TOKEN_SHAPED = /hush_[0-9A-Za-z]{20,}/g;

const sensitive = new Set<string>();
const observed: { source: string; text: string }[] = [];
let observedBytes = 0;

/** A fresh, recognisable secret value (unique per call). `suffix` may carry hostile bytes. */
export function secretValue(suffix = ''): string {
  const v =
    MARK +
    randomBytes(10)
      .toString('hex')
      .slice(0, 14)
      .replace(/[^0-9a-z]/g, '0') +
    suffix;
  sensitive.add(v.slice(0, MARK.length + 14));
  return v;
}

/**
 * A deterministic marked value for property tests (fast-check must be able to
 * replay and shrink it): the marker plus 14 base-36 digits of `n`.
 */
export function markedValue(n: number, suffix = ''): string {
  return MARK + Math.abs(Math.trunc(n)).toString(36).padStart(14, '0').slice(-14) + suffix;
}

/** Remembers a token string (or any other sensitive string) for the leak scan; returns it. */
export function remember<T extends string | null | undefined>(value: T): T {
  if (value) sensitive.add(value);
  return value;
}

/** Adds text that must hold no secret: a log line, an error body, an audit event. */
export function observe(source: string, text: string): void {
  if (!text) return;
  observed.push({ source, text });
  observedBytes += text.length;
}

export interface LeakReport {
  scannedItems: number;
  scannedBytes: number;
  sensitive: number;
  leaks: { source: string; what: string; excerpt: string }[];
}

/**
 * Scans everything observed. A leak is a remembered value or token found in
 * any observed text, or any token-shaped string at all (the server scrubs
 * those from logs and error bodies; audit events never hold one).
 */
export function scanForLeaks(): LeakReport {
  const leaks: LeakReport['leaks'] = [];
  const longOthers = [...sensitive].filter((s) => !s.startsWith(MARK) && !/^hush_/.test(s) && s.length >= 12);
  for (const { source, text } of observed) leaks.push(...scanText(text, source, longOthers));
  return { scannedItems: observed.length, scannedBytes: observedBytes, sensitive: sensitive.size, leaks };
}

/** The leaks in one text (exported so the scan itself can be tested against planted secrets). */
export function scanText(text: string, source = 'text', longOthers: string[] = []): LeakReport['leaks'] {
  const leaks: LeakReport['leaks'] = [];
  for (const m of text.matchAll(MARKED)) leaks.push({ source, what: 'secret value', excerpt: excerpt(text, m.index ?? 0) });
  for (const m of text.matchAll(TOKEN_SHAPED)) {
    leaks.push({ source, what: sensitive.has(m[0]) ? 'token' : 'token-shaped string', excerpt: excerpt(text, m.index ?? 0) });
  }
  for (const s of longOthers)
    if (text.includes(s)) leaks.push({ source, what: 'remembered string', excerpt: excerpt(text, text.indexOf(s)) });
  return leaks;
}

function excerpt(text: string, at: number): string {
  // The excerpt itself must not print the secret in full in the test output.
  return JSON.stringify(text.slice(Math.max(0, at - 60), at + 12) + '…');
}

/** The closing check of a test file: zero leaks, with the counts in the output. */
export function assertNoLeaks(t: { diagnostic: (s: string) => void }, label: string): void {
  const r = scanForLeaks();
  t.diagnostic(
    `${label}: leak scan over ${r.scannedItems} log lines / error bodies / audit events ` +
      `(${Math.round(r.scannedBytes / 1024)} KiB), ${r.sensitive} secret values and tokens tracked: ` +
      `${r.leaks.length} leaks`,
  );
  console.log(`# RELIABILITY ${label}: leaks=${r.leaks.length} scanned=${r.scannedItems}`);
  assert.equal(
    r.leaks.length,
    0,
    `leaks found:\n${r.leaks
      .slice(0, 20)
      .map((l) => `${l.source}: ${l.what}: ${l.excerpt}`)
      .join('\n')}`,
  );
}

/**
 * The closing test of a file whose servers ran in this process (startServer):
 * no remembered value, token-shaped string or Authorization value in any
 * captured log line.
 */
export function logLeakCheck(): void {
  test('no token, Authorization value or secret value appears in any captured log line', (t) => {
    assert.ok(capturedLogs.length > 0, 'the servers logged nothing, so the check would prove nothing');
    assert.ok(sensitive.size > 0, 'no sensitive values were remembered');
    for (const line of capturedLogs) observe('server log', line);
    assert.deepEqual(
      capturedLogs.filter((l) => /bearer\s/i.test(l)).map((l) => `Authorization value in ${l.slice(0, 200)}`),
      [],
    );
    assertNoLeaks(t, 'server logs');
  });
}
