/**
 * Things some tests need from the machine. Each is checked once, before the
 * tests that need it; when one is missing those tests are skipped with the
 * reason instead of failing (or passing) for an unrelated cause.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliReachableBy } from './reachable.js';

/** Why /proc (a process's status and open descriptors, Linux) cannot be read here, or false. */
export const PROC_SKIP: string | false = (() => {
  try {
    readFileSync('/proc/self/status', 'utf8');
    readdirSync('/proc/self/fd');
    return false;
  } catch (e) {
    return `needs Linux /proc (/proc/self/status and /proc/self/fd cannot be read: ${(e as NodeJS.ErrnoException).code})`;
  }
})();

export const IS_ROOT = process.getuid?.() === 0;
export const NOBODY = 65534;

/**
 * Why the CLI cannot be run as `nobody` here (not root, or no copy of it that `nobody` can reach could be
 * made), or false. Tests run it as nobody from NOBODY_CLI: where the checkout lives does not matter.
 */
export const NOBODY_SKIP: string | false = (() => {
  if (!IS_ROOT) return 'needs root to run the CLI as another user';
  try {
    cliReachableBy(NOBODY);
    return false;
  } catch (e) {
    return (e as Error).message;
  }
})();

/** The `dist/cli/main.js` that `nobody` runs (a reachable copy when the checkout is private); only when NOBODY_SKIP is false. */
export const NOBODY_CLI: string = NOBODY_SKIP ? '' : cliReachableBy(NOBODY);

/** Why a connection cannot come from 127.0.0.x other than 127.0.0.1 (Linux routes all of 127/8 to lo; other systems may not), or false. */
export const LOOPBACK_ALIASES_SKIP: string | false = await new Promise((resolve) => {
  const server = createServer((c) => c.destroy()).listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    const c = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    const done = (why: string | false) => {
      c.destroy();
      server.close();
      resolve(why);
    };
    c.once('connect', () => done(false));
    c.once('error', (e: NodeJS.ErrnoException) =>
      done(`connections from 127.0.0.2 are not possible here (${e.code}): "another client address" needs 127/8 on the loopback interface`),
    );
  });
});

/**
 * gpg-agent puts its sockets in GNUPGHOME when /run/user/UID does not exist;
 * a Unix socket path has at most 107 bytes. Why a GNUPGHOME under TMPDIR is
 * too long for that, or false.
 */
export const SHORT_TMPDIR_SKIP: string | false = (() => {
  const socket = join(tmpdir(), 'hush-gpg-XXXXXX', 'S.gpg-agent.extra');
  return Buffer.byteLength(socket) <= 107
    ? false
    : `TMPDIR is too long for gpg-agent's sockets (${socket} is over 107 bytes); set a short TMPDIR such as /tmp`;
})();
