/**
 * `hush run`: read an environment's secrets, start the command with them,
 * pass signals on, and exit with the command's exact status. docs/run.md is
 * the user-facing description of everything here.
 */
import { MAX_TIMER_MS } from '../../common/timers.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import {
  createClient,
  isAuthError,
  isForbiddenError,
  isHushError,
  isNotFoundError,
  isRateLimitedError,
  isTimeoutError,
  isUnavailableError,
  isValidationError,
  type HushClient,
  type SecretsSnapshot,
} from 'hush-vault-sdk';
import type { RunArgs } from '../commands/run.js';
import { jwtAuth, requireTarget, resolveConnection, transportOptions, type Connection } from '../connection.js';
import { CliError, EXIT, errorLine } from '../output.js';
import { parseDuration } from '../../common/duration.js';
import { buildChildEnv, ENV_NAME, parseList, parsePreserve, type EnvPolicy } from './env.js';
import { CREDENTIAL_VARIABLES, scrubInitialEnvironment } from './scrub-environ.js';
import type { MountFormat } from './mount.js';
import { exitStatus, FORWARDED, signalNumber, STOPPING, TERMINAL_SIGNALS, terminalAlreadyDelivered } from './signals.js';
import { dict } from '../../common/dict.js';

/** Exit statuses of failures before the command starts, beyond the CLI's own (docs/run.md). */
export const RUN_EXIT = { notExecutable: 126, commandNotFound: 127 } as const;

export interface RunPlan {
  file: string;
  args: string[];
  /** How messages name the command. */
  display: string;
  only: string[] | undefined;
  /** Values as stored, references not resolved (--raw). */
  raw: boolean;
  policy: EnvPolicy;
  mask: boolean;
  watch: boolean;
  graceMs: number;
  fallback: { path: string; maxAgeMs: number } | null;
  mount: { path: string; format: MountFormat } | null;
}

const usage = (msg: string) => new CliError(msg, EXIT.usage);

/** Validates the flags into a plan; every mistake is a usage error (exit 2) before anything else happens. */
export function parsePlan(a: RunArgs): RunPlan {
  const rest = (a['--'] ?? []).map(String);
  const stray = (a.args ?? []).map(String);
  if (stray.length) {
    throw usage(
      `put the command after --, so that its own flags are not taken for hush's: hush run [options] -- ${stray.join(' ').slice(0, 200)}`,
    );
  }
  let file: string;
  let args: string[];
  let display: string;
  if (a.command !== undefined) {
    if (typeof a.command !== 'string' || a.command === '') throw usage('--command needs a shell command string');
    file = '/bin/sh';
    args = ['-c', a.command, 'sh', ...rest];
    display = '/bin/sh -c ...';
  } else {
    if (rest.length === 0) throw usage('no command given: hush run [options] -- COMMAND [ARGS...] (or --command "shell string")');
    if (rest[0] === '') throw usage('the command name is empty');
    file = rest[0];
    args = rest.slice(1);
    display = rest[0];
  }
  const only = parseList(a.only);
  for (const n of only) if (!ENV_NAME.test(n)) throw usage(`--only: "${n.slice(0, 80)}" is not a valid variable name`);
  const graceMs = parseDuration(a['watch-grace'] ?? '10s', { bareSeconds: true, allowZero: true });
  if (graceMs === null || graceMs < 0) throw usage(`--watch-grace: "${a['watch-grace']}" is not a duration (e.g. 10s, 500ms, 1m)`);
  if (graceMs > MAX_TIMER_MS) throw usage('--watch-grace must be at most 24d (the longest delay a timer holds)');
  let fallback: RunPlan['fallback'] = null;
  if (a.fallback !== undefined) {
    if (!a.fallback) throw usage('--fallback needs a file path');
    const maxAgeMs = parseDuration(a['fallback-max-age'] ?? '24h', { bareSeconds: true });
    if (maxAgeMs === null || maxAgeMs <= 0)
      throw usage(`--fallback-max-age: "${a['fallback-max-age']}" is not a duration (e.g. 30m, 24h, 7d)`);
    fallback = { path: resolve(a.fallback), maxAgeMs };
  }
  let mount: RunPlan['mount'] = null;
  if (a.mount !== undefined) {
    if (!a.mount) throw usage('--mount needs a file path');
    const path = resolve(a.mount);
    const given = a['mount-format'] === 'env' ? 'dotenv' : a['mount-format'];
    const format = (given ?? (/\.json$/i.test(path) ? 'json' : 'dotenv')) as MountFormat;
    mount = { path, format };
  } else if (a['mount-format'] !== undefined) {
    throw usage('--mount-format needs --mount FILE');
  }
  if (a['no-env'] && !mount) throw usage('--no-env needs --mount FILE (otherwise the command would get no secrets at all)');
  return {
    file,
    args,
    display,
    only: only.length ? only : undefined,
    raw: !!a.raw,
    policy: { preserve: parsePreserve(a['preserve-env']), inject: !a['no-env'] },
    mask: !!a.mask,
    watch: !!a.watch,
    graceMs,
    fallback,
    mount,
  };
}

function numberSetting(
  flag: number | undefined,
  raw: string | undefined,
  dflt: number,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = flag ?? (raw === undefined || raw.trim() === '' ? undefined : Number(raw));
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0) throw usage(`${name} must be a non-negative number`);
  if (v > max) throw usage(`${name} must be at most ${max} ms (about 24.8 days, the longest delay a timer holds)`);
  return v;
}

const NOT_STARTED = 'the command was not started';

/** Maps a failure to read the secrets to a documented exit status and a message that says what to do. */
export function startError(e: unknown, conn: Connection, target: string, plan: RunPlan): CliError {
  if (e instanceof CliError) return e;
  if (!isHushError(e)) return new CliError(`${(e as Error)?.message ?? String(e)}; ${NOT_STARTED}`, EXIT.error);
  let exit: number;
  let msg = e.message.split('\n')[0];
  const certificate = e.code === 'certificate_untrusted';
  if (e.code === 'jwt_unavailable') {
    ({ exitCode: exit, message: msg } = CliError.from(e));
  } else if (isAuthError(e) || isForbiddenError(e)) {
    exit = EXIT.auth;
    if (e.code === 'token_malformed')
      msg = `the token from ${conn.sources.token} is not a valid Hush token: ${msg.replace(/^.*? is not a valid Hush token: /, '')}`;
    else if (e.status === 401 && conn.jwt)
      msg = `${msg.replace(/ \(role "[^"]*"\)$/, '')} (role "${conn.jwt.role}", JWT from ${conn.jwt.from})`;
    else if (e.status === 401) msg = `${msg} (token from ${conn.sources.token})`;
    else if (e.status === 403 && !msg.includes(`read:${target}`)) msg = `${msg} (the token needs read:${target})`;
  } else if (isNotFoundError(e)) {
    exit = EXIT.notFound;
    if (!msg.includes(target)) msg = `${target}: ${msg}`;
  } else if (certificate) {
    ({ exitCode: exit, message: msg } = CliError.from(e));
  } else if (isUnavailableError(e) || isTimeoutError(e) || isRateLimitedError(e)) {
    exit = EXIT.unavailable;
    msg += plan.fallback
      ? `; no usable fallback copy in ${plan.fallback.path}`
      : '; with --fallback FILE hush run keeps an encrypted last-known copy for outages';
  } else if (isValidationError(e)) {
    exit = EXIT.usage;
  } else {
    exit = CliError.from(e).exitCode;
  }
  return new CliError(`${msg}; ${NOT_STARTED}`, exit, e.code);
}

function flush(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((done) => {
    const t = setTimeout(done, 1000);
    try {
      s.write('', () => {
        clearTimeout(t);
        done();
      });
    } catch {
      clearTimeout(t);
      done();
    }
  });
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

type MountModule = typeof import('./mount.js');
type MaskModule = typeof import('./mask.js');

/**
 * Owns the child: starts it, relays signals, restarts it for --watch, and
 * ends hush run with its status.
 */
export class Supervisor {
  private child: ChildProcess | null = null;
  private pipes: Promise<void>[] = [];
  private restarting = false;
  private restartWaiter: ((status: number) => void) | null = null;
  private stopRequested = false;
  private finished = false;
  private watchAbort: AbortController | null = null;
  private readonly maskValues = new Set<string>();
  private mountMod: MountModule | null = null;
  private maskMod: MaskModule | null = null;
  private mountWritten = false;

  constructor(
    private readonly plan: RunPlan,
    private readonly baseEnv: NodeJS.ProcessEnv,
    private readonly target: string,
  ) {}

  /**
   * Installed before anything else: as PID 1 a signal without a handler is
   * ignored, and before the command starts a stop signal must still stop us.
   */
  installSignalHandlers(): void {
    for (const sig of FORWARDED) process.on(sig, () => this.onSignal(sig));
    process.on('exit', () => {
      if (this.mountWritten && this.plan.mount) this.mountMod?.removeMount(this.plan.mount.path);
    });
  }

  private onSignal(sig: NodeJS.Signals): void {
    if (this.finished) return;
    const child = this.child;
    if (!child) {
      // The command has not started: a stop signal ends hush run as its default action would.
      if (STOPPING.has(sig)) {
        this.finished = true;
        process.exit(128 + signalNumber(sig));
      }
      return;
    }
    // A stop signal during a --watch restart: do not start the next command.
    if (this.restarting && STOPPING.has(sig)) this.stopRequested = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    // Ctrl-C / Ctrl-\ and a window resize at a terminal already reached the child (same foreground process group).
    if (TERMINAL_SIGNALS.has(sig) && terminalAlreadyDelivered(child.pid)) return;
    try {
      child.kill(sig);
    } catch {
      /* it is exiting */
    }
  }

  async start(secrets: Record<string, string>): Promise<void> {
    if (this.plan.mount) this.mountMod = await import('./mount.js');
    if (this.plan.mask) this.maskMod = await import('./mask.js');
    await this.writeMount(secrets);
    await this.spawnChild(secrets);
  }

  private async writeMount(secrets: Record<string, string>): Promise<void> {
    if (!this.plan.mount || !this.mountMod) return;
    const content = await this.mountMod.renderMount(secrets, this.plan.mount.format);
    this.mountWritten = true;
    this.mountMod.writeMount(this.plan.mount.path, content);
  }

  private async spawnChild(secrets: Record<string, string>): Promise<void> {
    const { plan } = this;
    for (const v of Object.values(secrets)) this.maskValues.add(v);
    if (plan.policy.inject) {
      for (const [k, v] of Object.entries(secrets)) {
        if (v.includes('\0'))
          throw new CliError(
            `the value of ${k} contains a NUL byte, which an environment variable cannot hold (use --mount FILE --no-env); ${NOT_STARTED}`,
            EXIT.error,
          );
      }
    }
    const env = buildChildEnv(this.baseEnv, secrets, plan.policy);
    let child: ChildProcess;
    try {
      child = spawn(plan.file, plan.args, { env, stdio: plan.mask ? ['inherit', 'pipe', 'pipe'] : 'inherit' });
    } catch (e) {
      throw new CliError(`cannot start ${plan.display}: ${(e as Error).message}; ${NOT_STARTED}`, EXIT.error);
    }
    child.once('exit', (code, signal) => this.onExit(child, exitStatus(code, signal)));
    await new Promise<void>((ok, fail) => {
      child.once('spawn', () => ok());
      child.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT')
          fail(new CliError(`${plan.display}: command not found; ${NOT_STARTED}`, RUN_EXIT.commandNotFound, 'command_not_found'));
        else
          fail(
            new CliError(
              `${plan.display}: cannot execute (${e.code ?? e.message}); ${NOT_STARTED}`,
              RUN_EXIT.notExecutable,
              'not_executable',
            ),
          );
      });
    });
    child.on('error', (e) => process.stderr.write(`hush: ${plan.display}: ${e.message}\n`));
    this.child = child;
    if (plan.mask && this.maskMod) {
      this.pipes = [this.pipeMasked(child.stdout!, process.stdout), this.pipeMasked(child.stderr!, process.stderr)];
    }
  }

  /** Copies src to dst through a masker; resolves when everything the child wrote has been passed on. */
  private pipeMasked(src: Readable, dst: NodeJS.WriteStream): Promise<void> {
    const t = this.maskMod!.maskStream(this.maskValues);
    // Our reader went away (EPIPE): close the child's pipe too, so it sees EPIPE/SIGPIPE as it would without us.
    const onDstError = () => {
      src.unpipe(t);
      src.destroy();
      t.destroy();
    };
    dst.once('error', onDstError);
    src.pipe(t).pipe(dst, { end: false });
    return new Promise<void>((done) => {
      const end = () => {
        dst.removeListener('error', onDstError);
        done();
      };
      t.once('end', end);
      t.once('close', end);
    });
  }

  /** Waits (a bounded time) for the masked output of the last child to be written. */
  private async drain(): Promise<void> {
    if (!this.pipes.length) return;
    const pipes = this.pipes;
    this.pipes = [];
    await Promise.race([Promise.all(pipes), delay(2000)]);
  }

  private onExit(child: ChildProcess, status: number): void {
    if (child !== this.child) return;
    if (this.restartWaiter) {
      const w = this.restartWaiter;
      this.restartWaiter = null;
      w(status);
      return;
    }
    void this.finish(status);
  }

  async finish(status: number): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.watchAbort?.abort();
    await this.drain();
    if (this.mountWritten && this.plan.mount) this.mountMod?.removeMount(this.plan.mount.path);
    this.mountWritten = false;
    if (this.plan.mask) await Promise.all([flush(process.stdout), flush(process.stderr)]);
    process.exit(status);
  }

  /** --watch: SIGTERM, SIGKILL after the grace period, start again with the new values. */
  async restart(snap: SecretsSnapshot): Promise<void> {
    const old = this.child;
    if (this.finished || !old || this.restarting) return;
    this.restarting = true;
    const exited = new Promise<number>((r) => {
      this.restartWaiter = r;
    });
    process.stderr.write(`hush: ${this.target} changed (revision ${snap.revision}); restarting ${this.plan.display}\n`);
    try {
      old.kill('SIGTERM');
    } catch {
      /* already exiting */
    }
    const killer = setTimeout(() => {
      process.stderr.write(`hush: ${this.plan.display} did not exit within ${this.plan.graceMs} ms of SIGTERM; sending SIGKILL\n`);
      try {
        old.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, this.plan.graceMs);
    const status = await exited;
    clearTimeout(killer);
    await this.drain();
    if (this.stopRequested) {
      await this.finish(status);
      return;
    }
    try {
      await this.writeMount(snap.secrets);
      await this.spawnChild(snap.secrets);
    } catch (e) {
      const err = CliError.from(e);
      process.stderr.write(errorLine(err.message));
      await this.finish(err.exitCode);
      return;
    }
    this.restarting = false;
  }

  async watch(client: HushClient, project: string, env: string, snap: SecretsSnapshot): Promise<void> {
    const { watchLoop } = await import('./watch.js');
    this.watchAbort = new AbortController();
    await watchLoop({
      client,
      project,
      env,
      only: this.plan.only,
      raw: this.plan.raw,
      etag: snap.etag,
      secrets: snap.secrets,
      onChange: (s) => this.restart(s),
      warn: (m) => {
        process.stderr.write(`${m}\n`);
      },
      signal: this.watchAbort.signal,
    });
  }
}

export async function runMain(a: RunArgs, env: NodeJS.ProcessEnv): Promise<never> {
  const plan = parsePlan(a);
  const conn = resolveConnection(
    {
      addr: a.addr,
      'token-file': a['token-file'],
      role: a.role,
      'jwt-file': a['jwt-file'],
      'ca-file': a['ca-file'],
      project: a.project,
      env: a.env,
      profile: a.profile,
    },
    env,
  );
  const { project, env: envName } = requireTarget(conn);
  const target = `${project}/${envName}`;
  // The environment the command inherits, copied now (without a prototype), before hush's own credentials are
  // blanked in this process's initial environment block, which any process of the same user can read in
  // /proc/PID/environ: the command must not find hush's token there (docs/run.md, "What the command can see").
  const inherited: NodeJS.ProcessEnv = Object.assign(dict<string | undefined>(), env);
  if (env === process.env) {
    const scrub = scrubInitialEnvironment();
    const held = CREDENTIAL_VARIABLES.filter((n) => inherited[n]);
    if (scrub.skipped && held.length && process.platform === 'linux') {
      process.stderr.write(
        `hush: warning: could not blank ${held.join(', ')} in /proc/${process.pid}/environ (${scrub.skipped}); the command can read it there\n`,
      );
    }
  }
  const sup = new Supervisor(plan, inherited, target);
  sup.installSignalHandlers();
  if (!conn.token && !conn.jwt)
    throw new CliError(
      `no API token: run hush login, set HUSH_TOKEN or HUSH_TOKEN_FILE, or pass --token-file FILE (or --role with a JWT); ${NOT_STARTED}`,
      EXIT.auth,
      'token_missing',
    );
  // The fallback cache is encrypted under the token, and a role's token changes at every login.
  if (conn.jwt && plan.fallback)
    throw usage(`--fallback needs a fixed token and cannot be used with a JWT role (${conn.jwt.source}); ${NOT_STARTED}`);
  const auth = conn.jwt ? jwtAuth(conn.jwt) : undefined;
  let client: HushClient;
  let snap: SecretsSnapshot;
  try {
    client = createClient({
      addr: conn.addr,
      ...(auth ? { auth } : { token: conn.token! }),
      timeoutMs: numberSetting(a.timeout, env.HUSH_TIMEOUT, 10_000, 'the timeout', MAX_TIMER_MS) || 10_000,
      retries: Math.floor(numberSetting(a.retries, env.HUSH_RETRIES, 2, 'the retry count')),
      fallback: plan.fallback ?? undefined,
      ...(await transportOptions(conn)),
      onWarning: (m) => {
        process.stderr.write(`${m}\n`);
      },
    });
    snap = await client.secrets.getAll(project, envName, { only: plan.only, ...(plan.raw ? { raw: true } : {}) });
  } catch (e) {
    throw startError(e, conn, target, plan);
  }
  if (plan.only) {
    const missing = plan.only.filter((k) => !Object.prototype.hasOwnProperty.call(snap.secrets, k));
    if (missing.length) process.stderr.write(`hush: warning: not in ${target}: ${missing.join(', ')}\n`);
  }
  await sup.start(snap.secrets);
  if (plan.watch) {
    sup.watch(client, project, envName, snap).catch((e) => process.stderr.write(`hush: watch stopped: ${(e as Error).message}\n`));
  }
  // The process ends in Supervisor.finish, with the command's status.
  return new Promise<never>(() => undefined);
}
