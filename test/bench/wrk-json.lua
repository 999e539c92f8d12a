-- wrk script of the bench: test/bench/lib.ts runs
--   WRK_PUT=<run id or empty> wrk -t1 -c32 -d<N>s --latency -s wrk-json.lua URL
--
-- Without WRK_PUT every request is the one wrk builds from the command line
-- (GET, the -H headers), and no Lua runs per request: request() is not even
-- defined, since wrk then sends one fixed request, its fastest way.
-- With WRK_PUT, every request is a PUT of a distinct JSON body
-- {"value":"v-<n>-<run id>"}, so each write is a new version.
--
-- done() prints one line `WRK_JSON {...}` that the bench parses: request count,
-- duration, latency percentiles (microseconds) and every kind of error wrk counts.

local run = os.getenv("WRK_PUT") or ""

if run ~= "" then
  local n = 0
  wrk.method = "PUT"
  wrk.headers["Content-Type"] = "application/json"
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, '{"value":"v-' .. n .. '-' .. run .. '"}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f,' ..
    '"status4xx5xx":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
