import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { waitFor } from '../helpers/cli.js';
import { capturedLogs, longPollArrived, longPollChangeHandled } from '../helpers/server.js';
import { fixture, setSecret, startHush, type RunFixture } from './util.js';

let f: RunFixture;
before(async () => {
  f = await fixture({ FLAG: 'one', OTHER: 'x' });
});
after(async () => {
  await f.close();
});

/** Prints its FLAG; on SIGTERM exits with a code that names the value it had. */
const CHILD = `
const codes = { one: 11, two: 22, three: 33 };
// The handler goes in before the value is printed: a test that signals as soon as it sees the value must not race it.
process.on('SIGTERM', () => process.exit(codes[process.env.FLAG] ?? 99));
process.stdout.write('value=' + process.env.FLAG + '\\n');
setInterval(() => {}, 1000);
`;

describe('hush run --watch', () => {
  test("a change restarts the child with the new value; stopping hush gives the last child's code", { timeout: 30_000 }, async () => {
    let logged = capturedLogs.length;
    const h = startHush(['run', '--watch', '--only', 'FLAG', '--', process.execPath, '-e', CHILD], f.env);
    await h.waitOut('value=one\n');
    await longPollArrived(logged, 'hush run parked in a long-poll');
    const changed = Date.now();
    await setSecret(f, 'FLAG', 'two');
    await h.waitOut('value=two\n', 20_000);
    // Generous: it only has to stay below the long-poll's 25 s, which a change the long-poll missed would take.
    assert.ok(Date.now() - changed < 20_000, 'the long-poll notices the change');
    assert.match(h.stderr(), /hush: app\/prod changed \(revision \d+\); restarting/);
    // A change outside --only does not restart the child: once hush run has handled it (the long-poll
    // answered 200, the next one sent), a restart would have happened.
    logged = capturedLogs.length;
    await setSecret(f, 'OTHER', 'y');
    await longPollChangeHandled(logged, 'hush run to handle the change to OTHER');
    assert.equal(h.stdout().split('value=').length - 1, 2, 'no restart for a name outside --only');
    process.kill(h.child.pid!, 'SIGTERM');
    const r = await h.done;
    assert.equal(r.code, 22, r.stderr);
    assert.equal(r.out, 'value=one\nvalue=two\n');
  });

  test('a child that ignores SIGTERM is killed after --watch-grace and restarted', { timeout: 30_000 }, async () => {
    await setSecret(f, 'FLAG', 'one');
    const stubborn = `process.stdout.write('value=' + process.env.FLAG + '\\n'); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`;
    const logged = capturedLogs.length;
    const h = startHush(['run', '--watch', '--watch-grace', '300ms', '--', process.execPath, '-e', stubborn], f.env);
    await h.waitOut('value=one\n');
    await longPollArrived(logged, 'hush run parked in a long-poll');
    await setSecret(f, 'FLAG', 'three');
    await h.waitOut('value=three\n');
    assert.match(h.stderr(), /did not exit within 300 ms of SIGTERM; sending SIGKILL/);
    // The child ignores SIGTERM, so end the whole process group.
    process.kill(-h.child.pid!, 'SIGKILL');
    await h.done;
  });

  test('if the child exits by itself, hush run exits with its code (no restart)', async () => {
    const h = startHush(['run', '--watch', '--', 'sh', '-c', 'exit 4'], f.env);
    const r = await h.done;
    assert.equal(r.code, 4);
  });

  test('the watch survives a network outage: it backs off, reconnects, and still sees the next change', { timeout: 40_000 }, async () => {
    // A TCP proxy in front of the server stands in for the network: cutting it resets every connection.
    const target = new URL(f.server.url);
    const sockets = new Set<Socket>();
    let down = false;
    let refused = 0;
    const proxy = createServer((client) => {
      if (down) {
        refused++;
        client.destroy();
        return;
      }
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const port = (proxy.address() as AddressInfo).port;
    try {
      await setSecret(f, 'FLAG', 'one');
      const logged = capturedLogs.length;
      const h = startHush(['run', '--watch', '--', process.execPath, '-e', CHILD], { ...f.env, HUSH_ADDR: `http://127.0.0.1:${port}` });
      await h.waitOut('value=one\n');
      await longPollArrived(logged, 'hush run parked in a long-poll');
      // Outage: reset the long-poll in flight and every new connection.
      down = true;
      for (const s of sockets) s.destroy();
      await waitFor(() => /watch: .*retrying with backoff/.test(h.stderr()), 'hush run to report the outage');
      assert.match(h.stderr(), /watch: cannot reach the Hush server .*retrying with backoff, the command keeps running/, h.stderr());
      await setSecret(f, 'FLAG', 'two'); // changed while hush cannot see the server
      // hush run tried again after the change, and could not see it.
      const tries = refused;
      await waitFor(() => refused > tries, 'hush run to retry during the outage');
      assert.equal(h.stdout(), 'value=one\n', h.stderr());
      down = false;
      await h.waitOut('value=two\n', 20_000);
      assert.match(h.stderr(), /reconnected/);
      process.kill(h.child.pid!, 'SIGTERM');
      const r = await h.done;
      assert.equal(r.code, 22, r.stderr);
    } finally {
      for (const s of sockets) s.destroy();
      proxy.close();
    }
  });
});
