import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { progress } from '../../cli/progress.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; written: () => string } {
  let out = '';
  const stream = {
    isTTY,
    write: (s: string) => {
      out += s;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, written: () => out };
}

describe('progress indicator', () => {
  it('draws a spinner with the label on a terminal and clears its line when stopped', async () => {
    const f = fakeStream(true);
    const p = progress('Importing 5000 variables', { delayMs: 0, stream: f.stream });
    await sleep(200);
    p.update('Still importing');
    await sleep(120);
    p.stop();
    // eslint-disable-next-line no-control-regex -- the spinner's escape sequence is what is checked
    assert.match(f.written(), /\r\x1b\[K. Importing 5000 variables \(\d+\.\ds\)/);
    assert.match(f.written(), /Still importing/);
    assert.ok(f.written().endsWith('\r\x1b[K'));
  });

  it('writes nothing when the stream is not a terminal', async () => {
    const f = fakeStream(false);
    const p = progress('x', { delayMs: 0, stream: f.stream });
    await sleep(100);
    p.stop();
    assert.equal(f.written(), '');
  });

  it('writes nothing for work that ends before the delay', async () => {
    const f = fakeStream(true);
    const p = progress('x', { delayMs: 200, stream: f.stream });
    await sleep(20);
    p.stop();
    await sleep(250);
    assert.equal(f.written(), '');
  });
});
