/**
 * Drives a program on a pseudo-terminal, through Python's pty module (Node
 * has none): the one terminal driver of the tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './server.js';

/** Why no pseudo-terminal can be driven here, or false. */
export const PTY_SKIP: string | false =
  spawnSync('python3', ['-c', 'import pty, fcntl, termios'], { stdio: 'ignore' }).status === 0
    ? false
    : 'python3 with the pty, fcntl and termios modules is needed to drive a terminal';

/** Once the screen shows `when` (and `afterMs` more have passed): resize the terminal, then type `send`. Steps run in order. */
export interface PtyStep {
  when: string;
  afterMs?: number;
  send?: string;
  resize?: [rows: number, cols: number];
}

const DRIVER = `
import os, pty, sys, time, select, json, fcntl, termios, struct
steps = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b''; i = 0; seen_at = None; deadline = time.time() + 20
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try: data = os.read(fd, 65536)
        except OSError: break
        if not data: break
        out += data
    if i < len(steps):
        s = steps[i]
        if seen_at is None and s['when'].encode() in out: seen_at = time.time()
        if seen_at is not None and time.time() - seen_at >= s.get('afterMs', 50) / 1000:
            if 'resize' in s: fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', s['resize'][0], s['resize'][1], 0, 0))
            if 'send' in s: os.write(fd, s['send'].encode())
            i += 1; seen_at = None
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;

let driver: string | null = null;

/** Runs `argv` on a terminal, following `steps`; resolves with its exit code and everything the terminal displayed. */
export function onPty(argv: string[], steps: PtyStep[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; screen: string }> {
  if (!driver) writeFileSync((driver = join(tempDir('hush-pty-'), 'drive_pty.py')), DRIVER);
  return new Promise((resolve) => {
    const child = spawn('python3', [driver!, JSON.stringify(steps), ...argv], {
      env: { TERM: 'dumb', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let screen = '';
    child.stdout.on('data', (d) => {
      screen += d;
    });
    // The driver gives up after 20 s; this only ends one that cannot.
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}
