/**
 * Issue 21, second outside review, item 2: an interrupted soak run
 * (`node scripts/soak.mjs`, Ctrl-C or SIGTERM) left its detached test
 * processes, and the servers they had started, running. Starts the real
 * soak, interrupts it once its servers run, and checks that no process of
 * its group survives and its temp files are gone.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { waitExit, waitFor } from '../helpers/cli.js';
import { PROC_SKIP } from '../helpers/preconditions.js';
import { PG_URL } from '../helpers/server.js';

const SOAK = new URL('../../../scripts/soak.mjs', import.meta.url).pathname;

/** Pids whose process group is `pgid` (field 5 of /proc/PID/stat). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** True when some member of the group is a `hush server`. */
const runsAServer = (pgid: number) =>
  groupMembers(pgid).some((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes('server');
    } catch {
      return false;
    }
  });

describe(
  'an interrupted soak run leaves nothing running (review item 2)',
  { skip: PROC_SKIP || (PG_URL ? false : 'the soak run needs HUSH_TEST_PG_URL') },
  () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      it(`${sig} once its servers run: every process of its group is gone, its temp files removed, exit ${sig === 'SIGINT' ? 130 : 143}`, async (t) => {
        // Not as a child of this test runner (NODE_TEST_CONTEXT would make the soak's own runner report to it).
        const env = { ...process.env };
        delete env.NODE_TEST_CONTEXT;
        const soak = spawn(process.execPath, [SOAK], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        t.after(() => {
          if (soak.exitCode === null && soak.signalCode === null) soak.kill('SIGTERM');
        });
        let err = '';
        soak.stderr.on('data', (d) => {
          err += d;
        });
        soak.stdout.resume();
        await waitFor(() => /process group (\d+), temp files in (\S+)/.test(err), 'the soak to start its tests', 60_000);
        const [, group, scratch] = /process group (\d+), temp files in (\S+)/.exec(err)!;
        const pgid = Number(group);
        await waitFor(() => runsAServer(pgid), 'a hush server of the soak to run', 240_000);
        const before = groupMembers(pgid).length;
        soak.kill(sig);
        const { code } = await waitExit(soak, 60_000);
        assert.equal(code, sig === 'SIGINT' ? 130 : 143, err);
        await waitFor(
          () => groupMembers(pgid).length === 0,
          `every process of group ${pgid} to be gone (${groupMembers(pgid).length} left)`,
          10_000,
        );
        assert.ok(before >= 3, `the group had the runner, a test file and a server (${before})`);
        assert.ok(!existsSync(scratch), `${scratch} was removed`);
        assert.match(err, new RegExp(`soak: ${sig}: stopping the tests`));
      });
    }
  },
);
