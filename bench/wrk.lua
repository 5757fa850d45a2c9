-- wrk script for bench/run.py: the request of the benchmark (order-service
-- creates a payment: allowed by rule orders-create-payment) and one JSON line
-- of results that run.py parses. Latencies are in microseconds.
--
-- No request body: the server answers with a route-level direct_response as
-- soon as the headers have passed the filters, and an HTTP/1.1 Envoy closes a
-- connection whose request body it has not read yet, which would turn the
-- keep-alive mode into a new connection per request.
wrk.method = "POST"
wrk.headers["Content-Length"] = "0"

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
