-- wrk script of benches/forward.sh: the same requests to the FHIR server itself and to the
-- gateway in front of it.
--   METHOD=GET                     GET of the URL wrk is given
--   METHOD=POST BODY=file          POST of the file as FHIR JSON with
--     PLACER=fixed                 the body as it is and `If-None-Exist: $CONDITION` (a resent
--                                  order: the server finds it, 200, nothing new)
--     PLACER=fresh                 `__PLACER__` in the body replaced by a value of its own per
--                                  request and `If-None-Exist` on it (a new order: 201)
-- At the end one summary line: requests/s, latency p50/p99/p99.9 (ms), answers >= 400 and
-- socket errors.
local method = os.getenv("METHOD") or "GET"
local placer = os.getenv("PLACER") or "fixed"
local condition = os.getenv("CONDITION")
local template

wrk.method = method
if method == "POST" then
  local f = assert(io.open(os.getenv("BODY"), "rb"))
  template = f:read("*a")
  f:close()
  wrk.body = template
  wrk.headers["Content-Type"] = "application/fhir+json"
  if placer == "fixed" and condition then
    wrk.headers["If-None-Exist"] = condition
  end
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
if placer == "fresh" and method == "POST" then
  function request()
    n = n + 1
    local value = string.format("BENCH-%s-%d-%d", os.getenv("RUN") or "", tid, n)
    local headers = {
      ["Content-Type"] = "application/fhir+json",
      ["If-None-Exist"] = "identifier=https://gp.example.org/orders|" .. value,
    }
    return wrk.format("POST", nil, headers, (template:gsub("__PLACER__", value)))
  end
end

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
