import type { Registry } from 'prom-client';
import type { TokenLookupObserver } from '../../store/token-store.js';
import type { BatchObserver } from '../unit-of-work.js';

/**
 * The server's Prometheus metrics (GET /v1/sys/metrics, docs/metrics.md).
 * Labels are bounded: a route pattern (never the URL), a method, a status
 * code, a fixed word. No project, env, secret or token name is ever a label.
 *
 * The hot path touches plain numbers only: a request is one bucket count on
 * a series found without building a label object (prom-client's Histogram
 * checks and hashes its label set on every observation, 14-23 times slower
 * in the same run, docs/metrics.md). prom-client is loaded at the first
 * scrape (an idle server that is never scraped does not carry it), for its
 * registry, its text format and its default process metrics; one registry
 * per server, as several servers may live in one process (tests, a restore).
 */

/** Read at scrape time. */
export interface ScrapeSources {
  sealed(): boolean;
  pool(): { used: number; free: number; pending: number; max: number };
  /** Jobs waiting for the next group commit, or null while sealed. */
  queued(): number | null;
  /** The last successful backup (any server sharing the database), or null; may reject (database down). */
  lastBackup(): Promise<{ at: number; ms: number; bytes: number } | null>;
  /** Live secrets past their rotation period or expiry, in the whole vault (docs/lifecycle.md); may reject. */
  overdueSecrets?(): Promise<number>;
}

export type ConnectionRefusal = 'max_connections' | 'per_address' | 'pipelined';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/** How long a scrape waits for the backup record before it reports hush_backup_stats_unavailable 1. */
const BACKUP_READ_TIMEOUT_MS = 2000;

/** One label set of a histogram: counts per bucket (not cumulative), sum and count. */
class Series {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly bounds: number[],
    readonly labels: Record<string, string>,
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    if (i < this.bounds.length) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

type Sample = { metricName?: string; labels?: Record<string, string | number>; value: number };
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values(): Sample[];
}

function histogramSamples(name: string, all: Series[]): Sample[] {
  const out: Sample[] = [];
  for (const s of all) {
    let acc = 0;
    s.bounds.forEach((le, i) => {
      acc += s.counts[i];
      out.push({ metricName: `${name}_bucket`, labels: { le, ...s.labels }, value: acc });
    });
    out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
    out.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sum });
    out.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
  }
  return out;
}

export function metricsFactory(info: { version: string; storage: string }) {
  let sources: ScrapeSources | null = null;

  // Per route (keyed by Fastify's route config object, one per method and pattern), per status: its series.
  const requests: Series[] = [];
  const byRoute = new WeakMap<object, Map<number, Series>>();
  const unmatched = {};

  const append = new Series(LATENCY_BUCKETS, {});
  const commit = new Series(LATENCY_BUCKETS, {});
  const batchSize = new Series(BATCH_BUCKETS, {});
  let events = 0;
  const lookups = { hit: 0, miss: 0, uncached: 0 };
  const backup = { at: 0, ms: 0, bytes: 0, unavailable: 0 };
  const overdue = { count: 0 };
  const refused: Record<ConnectionRefusal, number> = { max_connections: 0, per_address: 0, pipelined: 0 };

  const pool = () => sources?.pool() ?? null;
  const families: Family[] = [
    {
      name: 'hush_info',
      help: 'Always 1; the labels say which Hush and storage engine this server runs',
      type: 'gauge',
      values: () => [{ labels: { version: info.version, storage: info.storage }, value: 1 }],
    },
    {
      name: 'hush_http_request_duration_seconds',
      help:
        'HTTP requests by route pattern, method and status: latency from arrival to the last byte handed ' +
        'to the socket (the _count is the number of requests)',
      type: 'histogram',
      values: () => histogramSamples('hush_http_request_duration_seconds', requests),
    },
    {
      name: 'hush_audit_append_duration_seconds',
      help: "Time to append one group-commit batch's audit events (inside its transaction)",
      type: 'histogram',
      values: () => histogramSamples('hush_audit_append_duration_seconds', [append]),
    },
    {
      name: 'hush_audit_batch_commit_duration_seconds',
      help: 'Time of one group-commit batch from BEGIN to COMMIT, its jobs and audit append included',
      type: 'histogram',
      values: () => histogramSamples('hush_audit_batch_commit_duration_seconds', [commit]),
    },
    {
      name: 'hush_audit_batch_size',
      help: 'Requests committed together in one group-commit batch',
      type: 'histogram',
      values: () => histogramSamples('hush_audit_batch_size', [batchSize]),
    },
    {
      name: 'hush_audit_events_total',
      help: 'Audit events this server has committed since it started',
      type: 'counter',
      values: () => [{ value: events }],
    },
    {
      name: 'hush_audit_queue_jobs',
      help: 'Requests waiting for the next group commit (0 while sealed)',
      type: 'gauge',
      values: () => [{ value: sources?.queued() ?? 0 }],
    },
    {
      name: 'hush_token_lookups_total',
      help:
        'Token lookups by authentication: cache hit or miss (SQLite), or uncached (PostgreSQL reads the ' + 'token row on every request)',
      type: 'counter',
      values: () => (['hit', 'miss', 'uncached'] as const).map((c) => ({ labels: { cache: c }, value: lookups[c] })),
    },
    {
      name: 'hush_sealed',
      help: '1 while this server is sealed (it holds no keys and answers 503 sealed), else 0',
      type: 'gauge',
      values: () => [{ value: sources?.sealed() ? 1 : 0 }],
    },
    {
      name: 'hush_db_pool_connections',
      help:
        "Database connections of this server's pool by state (PostgreSQL: the pool of " +
        '--database-pool-max; SQLite: the one writer connection)',
      type: 'gauge',
      values: () => {
        const p = pool();
        return p
          ? [
              { labels: { state: 'used' }, value: p.used },
              { labels: { state: 'free' }, value: p.free },
            ]
          : [];
      },
    },
    {
      name: 'hush_db_pool_max',
      help: 'Most connections the pool opens',
      type: 'gauge',
      values: () => {
        const p = pool();
        return p ? [{ value: p.max }] : [];
      },
    },
    {
      name: 'hush_db_pool_waiting',
      help: 'Requests waiting for a pool connection',
      type: 'gauge',
      values: () => {
        const p = pool();
        return p ? [{ value: p.pending }] : [];
      },
    },
    {
      name: 'hush_backup_last_success_timestamp_seconds',
      help:
        'When the last successful backup (scheduled or POST /v1/backups, by any server sharing the ' + 'database) finished; 0: none yet',
      type: 'gauge',
      values: () => [{ value: backup.at / 1000 }],
    },
    {
      name: 'hush_backup_last_duration_seconds',
      help: 'How long the last successful backup took',
      type: 'gauge',
      values: () => [{ value: backup.ms / 1000 }],
    },
    {
      name: 'hush_backup_last_size_bytes',
      help: 'Size of the last successful backup (encrypted)',
      type: 'gauge',
      values: () => [{ value: backup.bytes }],
    },
    {
      name: 'hush_secrets_overdue',
      help: 'Live secrets past their rotation period or expiry, in the whole vault (no per-secret labels: hush secrets stale lists them)',
      type: 'gauge',
      values: () => [{ value: overdue.count }],
    },
    {
      name: 'hush_connections_refused_total',
      help:
        'Connections closed unanswered or cut' +
        ' short: over --max-connections, over' +
        (' --max-connections-per-address, or too many' + ' pipelined requests (answered 429 and closed)'),
      type: 'counter',
      values: () => (Object.keys(refused) as ConnectionRefusal[]).map((r) => ({ labels: { reason: r }, value: refused[r] })),
    },
    {
      name: 'hush_backup_stats_unavailable',
      help:
        '1 when this scrape could not read the' +
        ' backup record (database unreachable,' +
        (' or too slow): the hush_backup_last_*' + ' values are then the last ones read'),
      type: 'gauge',
      values: () => [{ value: backup.unavailable }],
    },
  ];

  let registry: Promise<Registry> | null = null;
  async function makeRegistry(): Promise<Registry> {
    const client = await import('prom-client');
    const reg = new client.Registry();
    client.collectDefaultMetrics({ register: reg });
    // Gauges that prom-client names with a counter's suffix (promtool refuses them); their per-type twins
    // (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources) stay.
    for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      reg.removeSingleMetric(n);
    // The registry's interface for a metric (name, help, type and get()), as prom-client's own metrics have.
    for (const f of families) {
      reg.registerMetric({
        name: f.name,
        help: f.help,
        type: f.type,
        get: () => ({ name: f.name, help: f.help, type: f.type, values: f.values(), aggregator: 'sum' }),
      } as unknown as Parameters<Registry['registerMetric']>[0]);
    }
    return reg;
  }

  async function readBackup(): Promise<void> {
    if (!sources) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), BACKUP_READ_TIMEOUT_MS);
    });
    try {
      const [b, n] = await Promise.race([Promise.all([sources.lastBackup(), sources.overdueSecrets?.() ?? Promise.resolve(0)]), late]);
      Object.assign(backup, b ? { at: b.at, ms: b.ms, bytes: b.bytes } : { at: 0, ms: 0, bytes: 0 }, { unavailable: 0 });
      overdue.count = n;
    } catch {
      backup.unavailable = 1;
    } finally {
      clearTimeout(timer);
    }
  }

  const batches: BatchObserver = {
    committed(jobs, entries, appendSeconds, commitSeconds) {
      batchSize.observe(jobs);
      append.observe(appendSeconds);
      commit.observe(commitSeconds);
      events += entries;
    },
  };
  const tokens: TokenLookupObserver = {
    hit: () => {
      lookups.hit++;
    },
    miss: () => {
      lookups.miss++;
    },
    uncached: () => {
      lookups.uncached++;
    },
  };

  return {
    /** The Prometheus text format, version 0.0.4 (what prom-client's registry writes). */
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    batches,
    tokens,
    /** A connection refused or cut (vault/http/connections.ts, backpressure.ts). */
    connectionRefused(reason: ConnectionRefusal): void {
      refused[reason]++;
    },
    /** The sources read at scrape time, set once the server's parts exist. */
    setSources(s: ScrapeSources): void {
      sources = s;
    },
    /**
     * One finished request. `routeKey` is an object that stands for the
     * route (its config); null for a request that matched no route, which
     * is counted under route="(unmatched)" so a scan of random URLs adds no series.
     */
    request(routeKey: object | null, method: string, route: string | undefined, status: number, seconds: number): void {
      const key = routeKey && route ? routeKey : unmatched;
      let byStatus = byRoute.get(key);
      if (!byStatus) byRoute.set(key, (byStatus = new Map<number, Series>()));
      let series = byStatus.get(status);
      if (!series) {
        series = new Series(
          LATENCY_BUCKETS,
          key === unmatched
            ? { method: 'other', route: '(unmatched)', status: String(status) }
            : { method, route: route!, status: String(status) },
        );
        byStatus.set(status, series);
        requests.push(series);
      }
      series.observe(seconds);
    },
    async render(): Promise<string> {
      registry ??= makeRegistry();
      const reg = await registry;
      await readBackup();
      return reg.metrics();
    },
  };
}
export type Metrics = ReturnType<typeof metricsFactory>;
