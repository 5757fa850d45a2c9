-- wrk script for bench/run.py: the request of the benchmark (order-service
-- creates a payment: allowed by rule orders-create-payment) and one JSON line
-- of results that run.py parses. Latencies are in microseconds.
--
-- The benchmark request has no body: the server answers with a route-level
-- direct_response as soon as the headers have passed the filters, and an
-- HTTP/1.1 Envoy closes a connection whose request body it has not read yet,
-- which would turn the keep-alive mode into a new connection per request.
-- (wrk.format() sets Content-Length from wrk.body and drops it when there is
-- none, so this request carries no Content-Length: an HTTP/1.1 request without
-- one has no body.)
--
-- The body rows (BENCH_BODY set by run.py, e.g. `authz-form`) send the same
-- POST with that body and BENCH_CONTENT_TYPE; their server Envoy buffers the
-- whole request before the route answers (bench/templates/filter-buffer.yaml),
-- so those connections stay open too. wrk adds the Content-Length.
wrk.method = "POST"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
end

-- Under run.py --callgrind (BENCH_DRAIN_AFTER=S): no new request after S
-- seconds (1-second clock), so that no request is in flight when wrk stops.
-- wrk closing a connection with a request in flight makes the sidecar close
-- its upstream connection too, and the next run would open new TLS
-- connections to the server Envoy inside its measured window: a few per
-- thousand requests, which the slow valgrind'd Envoy would count per request.
local drain_after = tonumber(os.getenv("BENCH_DRAIN_AFTER") or "")
if drain_after ~= nil then
  local drain_at = os.time() + drain_after
  function delay()
    if os.time() >= drain_at then
      return 3600000
    end
    return 0
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
