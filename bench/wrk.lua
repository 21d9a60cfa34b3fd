-- wrk script for every bench scenario: with BENCH_BODY_FILE set each request POSTs that file (Content-Type
-- BENCH_CONTENT_TYPE; the binary tensor extension's header length from BENCH_INFERENCE_HEADER_LENGTH, bench/model.py),
-- else wrk's plain GET. At the end one BENCH-JSON line carries exact counts and latency percentiles (µs) for bench/wrk.py.
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  wrk.method, wrk.body = "POST", file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "text/plain"
  local binary_header = os.getenv("BENCH_INFERENCE_HEADER_LENGTH")
  if binary_header and binary_header ~= "" then wrk.headers["Inference-Header-Content-Length"] = binary_header end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
