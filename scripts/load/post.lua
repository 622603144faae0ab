-- wrk script: POST the file named by $BODY as FHIR JSON; at the end, one summary line:
-- requests/s, latency p50/p99/p99.9 (ms), non-2xx/4xx-expected answers and socket errors.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f p50=%.2f p99=%.2f p999=%.2f max=%.2f requests=%d status400plus=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / s,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
