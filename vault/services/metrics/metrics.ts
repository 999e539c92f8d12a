import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TokenLookupObserver } from '../../store/token-store.js';
import type { BatchObserver } from '../unit-of-work.js';

/**
 * The server's Prometheus metrics (GET /v1/sys/metrics, docs/metrics.md).
 * One registry per server, not prom-client's global one: several servers
 * may live in one process (tests, a restore). Labels are bounded: a route
 * pattern (never the URL), a method, a status code, a fixed word. No
 * project, env, secret or token name is ever a label.
 *
 * Cost on the hot path: one histogram observation per request, on a child
 * looked up without building a label object (see `request`); everything
 * read from a store or the seal is read at scrape time.
 */


/** Read at scrape time. Each may be absent (a sealed server has no audit queue). */
export interface ScrapeSources {
  sealed(): boolean;
  pool(): { used: number; free: number; pending: number; max: number };
  /** Jobs waiting for the next group commit, or null while sealed. */
  queued(): number | null;
  /** The last successful backup (any server sharing the database), or null; may reject (database down). */
  lastBackup(): Promise<{ at: number; ms: number; bytes: number } | null>;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One label set of the request histogram: counts per bucket (not cumulative), sum and count. */
class Series {
  readonly counts = new Float64Array(LATENCY_BUCKETS.length);
  sum = 0;
  count = 0;
  constructor(readonly labels: Record<string, string>) {}
  observe(v: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && v > LATENCY_BUCKETS[i]) i++;
    if (i < LATENCY_BUCKETS.length) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/**
 * hush_http_request_duration_seconds, observed once per request. prom-client's
 * Histogram checks, hashes and looks up its label set on every observation
 * (about as much as a microsecond); this keeps one Series per label set,
 * found by the caller without a label object, and hands the registry the
 * same values as a prom-client histogram when it is scraped.
 */
function requestHistogram(registry: Registry) {
  const name = 'hush_http_request_duration_seconds';
  const help = 'HTTP requests by route pattern, method and status: latency from arrival to the last byte handed to the socket (the _count is the number of requests)';
  const all: Series[] = [];
  const metric = {
    name, help, type: 'histogram',
    get() {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const s of all) {
        let acc = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          acc += s.counts[i];
          values.push({ metricName: `${name}_bucket`, labels: { le, ...s.labels }, value: acc });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
        values.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sum });
        values.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  // The registry's interface for a metric: name, help, type and get(), as prom-client's own metrics have.
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  return {
    series(method: string, route: string, status: string): Series {
      const s = new Series({ method, route, status });
      all.push(s);
      return s;
    },
  };
}

export function metricsFactory(info: { version: string; storage: string }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges that prom-client names with a counter's suffix (promtool refuses them); their per-type twins
  // (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources) stay.
  for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(n);
  let sources: ScrapeSources | null = null;

  new Gauge({ name: 'hush_info', help: 'Always 1; the labels say which Hush and storage engine this server runs', labelNames: ['version', 'storage'], registers: [registry] })
    .set({ version: info.version, storage: info.storage }, 1);

  const http = requestHistogram(registry);
  // Per route (keyed by Fastify's route config object, one per method and pattern), per status: its series.
  const children = new WeakMap<object, Map<number, Series>>();
  const unmatched = {};

  const append = new Histogram({ name: 'hush_audit_append_duration_seconds', help: 'Time to append one group-commit batch\'s audit events (inside its transaction)', buckets: LATENCY_BUCKETS, registers: [registry] });
  const commit = new Histogram({ name: 'hush_audit_batch_commit_duration_seconds', help: 'Time of one group-commit batch from BEGIN to COMMIT, its jobs and audit append included', buckets: LATENCY_BUCKETS, registers: [registry] });
  const batchSize = new Histogram({ name: 'hush_audit_batch_size', help: 'Requests committed together in one group-commit batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [registry] });
  const events = new Counter({ name: 'hush_audit_events_total', help: 'Audit events this server has committed since it started', registers: [registry] });

  const lookups = new Counter({ name: 'hush_token_lookups_total', help: 'Token lookups by authentication: cache hit or miss (SQLite), or uncached (PostgreSQL reads the token row on every request)', labelNames: ['cache'], registers: [registry] });
  const [hit, miss, uncached] = (['hit', 'miss', 'uncached'] as const).map((c) => {
    lookups.inc({ cache: c }, 0); // every series from the first scrape, at 0
    return lookups.labels(c);
  });

  const src = <T>(fn: (s: ScrapeSources) => T): T | null => (sources ? fn(sources) : null);
  new Gauge({ name: 'hush_sealed', help: '1 while this server is sealed (it holds no keys and answers 503 sealed), else 0', registers: [registry], collect() { this.set(src((s) => s.sealed()) ? 1 : 0); } });
  new Gauge({
    name: 'hush_db_pool_connections', help: 'Database connections of this server\'s pool by state (PostgreSQL: the pool of --database-pool-max; SQLite: the one writer connection)',
    labelNames: ['state'], registers: [registry],
    collect() { const p = src((s) => s.pool()); if (p) { this.set({ state: 'used' }, p.used); this.set({ state: 'free' }, p.free); } },
  });
  new Gauge({ name: 'hush_db_pool_max', help: 'Most connections the pool opens', registers: [registry], collect() { const p = src((s) => s.pool()); if (p) this.set(p.max); } });
  new Gauge({ name: 'hush_db_pool_waiting', help: 'Requests waiting for a pool connection', registers: [registry], collect() { const p = src((s) => s.pool()); if (p) this.set(p.pending); } });
  new Gauge({ name: 'hush_audit_queue_jobs', help: 'Requests waiting for the next group commit (0 while sealed)', registers: [registry], collect() { this.set(src((s) => s.queued()) ?? 0); } });

  const backupAt = new Gauge({ name: 'hush_backup_last_success_timestamp_seconds', help: 'When the last successful backup (scheduled or POST /v1/backups, by any server sharing the database) finished; 0: none yet', registers: [registry] });
  const backupMs = new Gauge({ name: 'hush_backup_last_duration_seconds', help: 'How long the last successful backup took', registers: [registry] });
  const backupBytes = new Gauge({ name: 'hush_backup_last_size_bytes', help: 'Size of the last successful backup (encrypted)', registers: [registry] });
  const backupUnknown = new Gauge({ name: 'hush_backup_stats_unavailable', help: '1 when this scrape could not read the backup record (database unreachable, or too slow): the hush_backup_last_* values are then the last ones read', registers: [registry] });

  async function readBackup(): Promise<void> {
    if (!sources) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), 2000); });
    try {
      const b = await Promise.race([sources.lastBackup(), late]);
      backupAt.set(b ? b.at / 1000 : 0);
      backupMs.set(b ? b.ms / 1000 : 0);
      backupBytes.set(b ? b.bytes : 0);
      backupUnknown.set(0);
    } catch {
      backupUnknown.set(1);
    } finally {
      clearTimeout(timer);
    }
  }

  const batches: BatchObserver = {
    committed(jobs, entries, appendSeconds, commitSeconds) {
      batchSize.observe(jobs);
      append.observe(appendSeconds);
      commit.observe(commitSeconds);
      if (entries > 0) events.inc(entries);
    },
  };

  return {
    registry,
    contentType: registry.contentType,
    batches,
    tokens: { hit: () => hit.inc(), miss: () => miss.inc(), uncached: () => uncached.inc() } satisfies TokenLookupObserver,
    /** The sources read at scrape time, set once the server's parts exist. */
    setSources(s: ScrapeSources): void { sources = s; },
    /**
     * One finished request. `routeKey` is an object that stands for the
     * route (its config); null for a request that matched no route, which
     * is counted under route="(unmatched)" so a scan of random URLs adds no series.
     */
    request(routeKey: object | null, method: string, route: string | undefined, status: number, seconds: number): void {
      const key = routeKey && route ? routeKey : unmatched;
      let byStatus = children.get(key);
      if (!byStatus) children.set(key, (byStatus = new Map()));
      let series = byStatus.get(status);
      if (!series) byStatus.set(status, (series = http.series(key === unmatched ? 'other' : method, key === unmatched ? '(unmatched)' : route!, String(status))));
      series.observe(seconds);
    },
    async render(): Promise<string> {
      await readBackup();
      return registry.metrics();
    },
  };
}
export type Metrics = ReturnType<typeof metricsFactory>;
