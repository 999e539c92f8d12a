/**
 * Programs from the machine that the bench and some tests drive (wrk,
 * HAProxy): found on PATH or in the sbin directories a non-root PATH lacks,
 * and installed from Debian's packages when missing, where that is possible.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The absolute path of `cmd` on PATH (or in /usr/sbin, /sbin), or null. */
export function which(cmd: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * The path of `cmd`, installing Debian package `pkg` first when it is missing
 * and this process runs as root (apt-get install, then apt-get update and
 * install again if the package lists were stale). Throws a message that says
 * what to install when that is not possible. apt-get's output goes to stderr.
 */
export function ensureTool(cmd: string, pkg = cmd): string {
  const found = which(cmd);
  if (found) return found;
  const howTo = `install the Debian package: apt-get install -y ${pkg}`;
  if (process.getuid?.() !== 0)
    throw new Error(`${cmd} is not installed, and this is not root, so it cannot be installed here; ${howTo} (as root), then run again`);
  if (!which('apt-get'))
    throw new Error(`${cmd} is not installed, and there is no apt-get; install ${cmd} (${pkg}) with the system's package manager`);
  const apt = (...args: string[]) =>
    spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  process.stderr.write(`${cmd} is missing: apt-get install -y ${pkg}\n`);
  if (!apt('install', '-y', pkg)) {
    apt('update');
    apt('install', '-y', pkg);
  }
  const installed = which(cmd);
  if (!installed) throw new Error(`${cmd} is not installed and apt-get could not install it; ${howTo}`);
  return installed;
}
