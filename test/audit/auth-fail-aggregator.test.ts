import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { AuditContext, AuditInput } from '../../vault/services/audit/audit-service.js';
import { authFailAggregator } from '../../vault/services/audit/auth-fail-aggregator.js';

function harness(opts: { windowMs?: number; fail?: boolean } = {}) {
  const events: { ctx: AuditContext; input: AuditInput }[] = [];
  const errors: unknown[] = [];
  let t = 1_000_000;
  const agg = authFailAggregator({
    record: async (ctx, input) => {
      if (opts.fail) throw new Error('audit down');
      events.push({ ctx, input });
    },
    onError: (e) => errors.push(e),
    windowMs: opts.windowMs ?? 60_000,
    now: opts.windowMs ? Date.now : () => t,
  });
  const at = (ip: string) => ({ ip, requestId: 'req_1', route: '/v1/projects', method: 'GET' });
  return {
    agg,
    events,
    errors,
    at,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('auth.fail aggregation (unit)', () => {
  it('the first failure from an address is recorded at once; the rest of the window only counts', async () => {
    const h = harness();
    await h.agg.fail(h.at('10.0.0.1'), 'unknown');
    for (let i = 0; i < 9; i++) {
      h.advance(1000);
      await h.agg.fail(h.at('10.0.0.1'), i % 3 ? 'unknown' : 'expired');
    }
    assert.equal(h.events.length, 1);
    assert.equal(h.events[0].input.detail!.count, 1);
    assert.equal(h.events[0].ctx.ip, '10.0.0.1');
    assert.equal(h.events[0].ctx.actorId, 'anonymous');
    await h.agg.close();
    assert.equal(h.events.length, 2);
    assert.deepEqual(h.events[1].input.detail!.reasons, { unknown: 6, expired: 3 });
    assert.equal(h.events[1].input.detail!.count, 9);
    assert.equal(h.events[1].input.detail!.reason, 'unknown');
    assert.equal(h.events[1].ctx.requestId, null);
  });

  it('a steady flood yields one event per window, and no failure is lost', async () => {
    const h = harness();
    let total = 0;
    for (let s = 0; s < 300; s++) {
      await h.agg.fail(h.at('10.0.0.2'), 'malformed');
      total++;
      h.advance(1000);
    }
    await h.agg.close();
    const n = h.events.length;
    assert.ok(n >= 5 && n <= 6, `about one event a minute over five minutes (${n})`);
    assert.equal(
      h.events.reduce((a, e) => a + (e.input.detail!.count as number), 0),
      total,
    );
  });

  it('networks are independent', async () => {
    const h = harness();
    await h.agg.fail(h.at('10.0.3.1'), 'unknown');
    await h.agg.fail(h.at('10.0.4.1'), 'unknown');
    await h.agg.fail(h.at('10.0.3.1'), 'unknown');
    assert.deepEqual(
      h.events.map((e) => e.ctx.ip),
      ['10.0.3.1', '10.0.4.1'],
    );
  });

  it('1,000 addresses of one /24 give one event, not 1,000 (finding 10); the summary counts them', async () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) await h.agg.fail(h.at(`127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`), 'unknown');
    assert.equal(h.events.length, 4, 'one first event per /24 (127.0.0-3)');
    await h.agg.close();
    assert.equal(h.events.length, 8);
    const summaries = h.events.filter((e) => e.input.detail!.aggregated);
    assert.equal(
      summaries.reduce((a, e) => a + (e.input.detail!.count as number), 0),
      996,
    );
    assert.deepEqual(
      summaries.map((e) => e.input.detail!.addresses),
      [250, 250, 250, 250],
    );
    assert.deepEqual(
      summaries.map((e) => e.input.detail!.network),
      ['127.0.0.0/24', '127.0.1.0/24', '127.0.2.0/24', '127.0.3.0/24'],
    );
  });

  it('IPv6 addresses are counted per /64', async () => {
    const h = harness();
    for (let i = 1; i <= 500; i++) await h.agg.fail(h.at(`2001:db8:1:2::${i.toString(16)}`), 'unknown');
    await h.agg.fail(h.at('2001:db8:1:3::1'), 'unknown');
    assert.deepEqual(
      h.events.map((e) => e.input.detail!.network),
      ['2001:db8:1:2::/64', '2001:db8:1:3::/64'],
    );
    await h.agg.close();
  });

  it('the total is capped: failures from more networks than the cap are counted together in one "other" event', async () => {
    const h = harness();
    // 5,000 /64s of one /48: an IPv6 attacker holds them all.
    for (let i = 0; i < 5000; i++) await h.agg.fail(h.at(`2001:db8:7:${i.toString(16)}::1`), 'unknown');
    assert.equal(h.events.length, 100, 'first events for the first 100 networks only');
    assert.ok(h.agg.size <= 101, `networks tracked: ${h.agg.size}`);
    await h.agg.close();
    assert.equal(h.events.length, 101, 'no summary for a network with nothing more counted, one for the rest');
    const other = h.events.at(-1)!;
    assert.equal(other.input.detail!.network, 'other');
    assert.equal(other.input.detail!.count, 4900, 'no failure is lost');
    assert.equal(other.ctx.ip, null);
  });

  it('requests refused while locked out are counted in the summary', async () => {
    const h = harness();
    await h.agg.fail(h.at('10.0.0.5'), 'unknown');
    for (let i = 0; i < 7; i++) h.agg.lockedOut(h.at('10.0.0.5'));
    await h.agg.close();
    assert.equal(h.events.length, 2);
    assert.equal(h.events[1].input.detail!.lockedOut, 7);
    assert.equal(h.events[1].input.detail!.count, 0);
  });

  it('a quiet window closes the address: the next failure is recorded at once again', async () => {
    const h = harness();
    await h.agg.fail(h.at('10.0.0.6'), 'unknown');
    h.advance(61_000);
    await h.agg.fail(h.at('10.0.0.6'), 'unknown');
    assert.equal(h.events.length, 2);
    assert.equal(h.events[1].input.detail!.aggregated, false);
    await h.agg.close();
  });

  it('an expired window with counts is summarised, and the new failure opens a counted window (no burst of two events)', async () => {
    const h = harness();
    await h.agg.fail(h.at('10.0.0.7'), 'unknown');
    await h.agg.fail(h.at('10.0.0.7'), 'unknown');
    h.advance(61_000);
    await h.agg.fail(h.at('10.0.0.7'), 'unknown');
    await sleep(0);
    assert.equal(h.events.length, 2);
    assert.equal(h.events[1].input.detail!.aggregated, true);
    assert.equal(h.events[1].input.detail!.count, 1);
    await h.agg.close();
    assert.equal(h.events.length, 3);
    assert.equal(h.events[2].input.detail!.count, 1);
  });

  it('the timer writes a summary when the window ends, without another request', async () => {
    const h = harness({ windowMs: 60 });
    await h.agg.fail(h.at('10.0.0.8'), 'unknown');
    await h.agg.fail(h.at('10.0.0.8'), 'unknown');
    await sleep(250);
    assert.equal(h.events.length, 2);
    assert.equal(h.events[1].input.detail!.count, 1);
    await sleep(150);
    assert.equal(h.agg.size, 0, 'the quiet window that followed closed the entry');
    await h.agg.close();
  });

  it('a failure to record is reported, never thrown', async () => {
    const h = harness({ fail: true });
    await h.agg.fail(h.at('10.0.0.9'), 'unknown');
    assert.equal(h.errors.length, 1);
    await h.agg.close();
  });
});
