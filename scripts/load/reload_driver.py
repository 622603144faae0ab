"""Load-and-reload driver for scripts/load-reload.sh (issue 8). Standard library only.

Worker threads keep one HTTP/1.1 connection each and post a fixed mix of requests; a controller
thread reloads the rules every few seconds, alternating a good change and a broken file, and
records when each reload was asked for and when it was in force (from /health). Afterwards
every response is checked: no 5xx, no dropped connection, a FHIR resource, and a decision
consistent with the rules in force when the request was sent.
"""

import argparse
import http.client
import json
import os
import re
import sys
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("--addr", required=True)
p.add_argument("--pid", type=int, required=True)
p.add_argument("--rules", required=True)
p.add_argument("--duration", type=float, default=60)
p.add_argument("--reload-every", type=float, default=3)
p.add_argument("--connections", type=int, default=8)
p.add_argument("--max-requests", type=int, default=2_000_000)
args = p.parse_args()
host, port = args.addr.rsplit(":", 1)

US05 = os.path.join(args.rules, "us", "US05-neck-pain.toml")
BROKEN = os.path.join(args.rules, "us", "ZZ-broken.toml")
ORIGINAL_US05 = open(US05).read()
assert 'action = "reject"' in ORIGINAL_US05
WARN_US05 = ORIGINAL_US05.replace('action = "reject"', 'action = "warn"', 1)


def example(rel):
    return open(os.path.join("examples", rel), "rb").read()


def batch(rels):
    entries = [
        {
            "fullUrl": "urn:uuid:00000000-0000-4000-8000-%012d" % i,
            "resource": json.loads(example(r)),
            "request": {"method": "POST", "url": "ServiceRequest"},
        }
        for i, r in enumerate(rels)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}).encode()


# (name, path, content type, body, depends on US05)
MIX = [
    ("us05", "/ServiceRequest", "application/fhir+json", example("us/us05-neck-pain-only-coded.json"), True),
    ("us13-redirect", "/ServiceRequest", "application/fhir+json", example("us/us13-calf-swelling-query-dvt.json"), False),
    ("gen01-accepted", "/ServiceRequest", "application/fhir+json", example("general/gen01-cxr-with-clinical-question.json"), False),
    ("batch-20", "/", "application/fhir+json",
     batch(["us/us05-neck-pain-only-coded.json", "us/us13-calf-swelling-query-dvt.json",
            "general/gen01-cxr-with-clinical-question.json", "xr/xr08-low-back-pain-loinc.json"] * 5), True),
    ("validate", "/$validate", "application/fhir+json", example("us/us14-haematuria-age-45-bundle.json"), False),
    ("bad-json", "/ServiceRequest", "application/fhir+json", b'{"resourceType": "ServiceRequest", "status": ', False),
]


def decision_of(body):
    """A summary of an answer that is the same whenever the same rules decide: status per
    entry and the guidance rules named."""
    rt = body.get("resourceType")
    if rt == "Bundle":
        return tuple((e["response"]["status"], rules_named(e["response"].get("outcome", {}))) for e in body.get("entry", []))
    if rt == "ServiceRequest":
        return ("redirected", body["performerType"]["coding"][0]["code"])
    return rules_named(body)


def rules_named(oo):
    out = []
    for i in oo.get("issue", []):
        for c in i.get("details", {}).get("coding", []):
            if c.get("system", "").endswith("/CodeSystem/guidance-rule") or c.get("system", "").endswith("/CodeSystem/referral-decision"):
                out.append((i.get("severity"), c.get("code")))
    return tuple(out)


results = []  # (name, t_start, t_end, status, decision) or (name, t_start, t_end, "error", text)
results_lock = threading.Lock()
stop = threading.Event()
count = [0]


def worker(n):
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    i = n
    local = []
    while not stop.is_set():
        with results_lock:
            if count[0] >= args.max_requests:
                break
            count[0] += 1
        name, path, ct, body, _ = MIX[i % len(MIX)]
        i += 1
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": ct})
            res = conn.getresponse()
            data = res.read()
            t1 = time.monotonic()
            try:
                parsed = json.loads(data)
                assert parsed.get("resourceType") in ("OperationOutcome", "Bundle", "ServiceRequest"), parsed.get("resourceType")
                dec = decision_of(parsed)
            except Exception as e:  # not FHIR
                local.append((name, t0, t1, "invalid-body", "%s: %r" % (e, data[:200])))
                continue
            local.append((name, t0, t1, res.status, dec))
        except Exception as e:
            local.append((name, t0, time.monotonic(), "error", repr(e)))
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()
    with results_lock:
        results.extend(local)


def health_counts():
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/health")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(r"(\d+) reloads, (\d+) failed", text)
    return int(m.group(1)), int(m.group(2))


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# Reload windows: (t_asked, t_in_force, version in force afterwards)
windows = []
rss = []  # (t, kB)


def rss_kb():
    for line in open("/proc/%d/status" % args.pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def controller(t_end):
    version = "reject"
    k = 0
    next_reload = time.monotonic() + args.reload_every
    while time.monotonic() < t_end and not stop.is_set():
        now = time.monotonic()
        rss.append((now, rss_kb()))
        if now < next_reload:
            time.sleep(min(0.5, next_reload - now))
            continue
        next_reload += args.reload_every
        ok0, failed0 = health_counts()
        if k % 2 == 0:
            # A good change: US05 switches between reject and warn.
            if os.path.exists(BROKEN):
                os.remove(BROKEN)
            version = "warn" if version == "reject" else "reject"
            write(US05, WARN_US05 if version == "warn" else ORIGINAL_US05)
            want = (ok0 + 1, failed0)
        else:
            write(BROKEN, 'id = "ZZ01"\ntitle = "broken on purpose\naction = \n')
            want = (ok0, failed0 + 1)
        t_asked = time.monotonic()
        os.kill(args.pid, 1)  # SIGHUP
        while health_counts() != want:
            if time.monotonic() - t_asked > 10:
                print("reload %d not reported within 10 s" % k)
                stop.set()
                return
            time.sleep(0.01)
        windows.append((t_asked, time.monotonic(), version, "good" if k % 2 == 0 else "broken"))
        k += 1


t_start = time.monotonic()
t_end = t_start + args.duration
threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.connections)]
for t in threads:
    t.start()
ctl = threading.Thread(target=controller, args=(t_end,))
ctl.start()
while time.monotonic() < t_end and not stop.is_set():
    time.sleep(0.2)
    with results_lock:
        if count[0] >= args.max_requests:
            break
stop.set()
for t in threads:
    t.join()
ctl.join()
elapsed = time.monotonic() - t_start

# The version in force at time t, or None inside a reload window (either may be seen).
def version_at(t0, t1):
    v = "reject"
    for asked, in_force, version, _ in windows:
        if t1 < asked:
            return v
        if t0 < in_force:
            return None
        v = version
    return v


problems = []
statuses = {}
expected = {}  # (name, version or '*') -> decision seen first
checked_consistency = 0
for name, t0, t1, status, dec in sorted(results, key=lambda r: r[1]):
    statuses[status] = statuses.get(status, 0) + 1
    if status in ("error", "invalid-body") or (isinstance(status, int) and status >= 500):
        problems.append("%s: %s %s" % (name, status, dec))
        continue
    depends = next(m[4] for m in MIX if m[0] == name)
    v = version_at(t0, t1) if depends else "*"
    if v is None:
        continue
    key = (name, v)
    checked_consistency += 1
    if key not in expected:
        expected[key] = (status, dec)
    elif expected[key] != (status, dec):
        problems.append("%s under %s: %s %s, earlier %s" % (name, v, status, dec, expected[key]))

# The two versions must decide US05 differently (else the check above proves nothing).
if ("us05", "reject") in expected and ("us05", "warn") in expected:
    if expected[("us05", "reject")][0] != 422 or expected[("us05", "warn")][0] != 200:
        problems.append("US05 decisions: %s" % {k: v[0] for k, v in expected.items() if k[0] == "us05"})
else:
    problems.append("both rule versions were not seen: %s" % sorted(expected))

good = sum(1 for w in windows if w[3] == "good")
broken = sum(1 for w in windows if w[3] == "broken")
settle = [kb for t, kb in rss if t - t_start > 10]
first, last = (settle[: len(settle) // 4], settle[-(len(settle) // 4):]) if len(settle) >= 8 else ([0], [0])
rss_first = sum(first) / max(1, len(first))
rss_last = sum(last) / max(1, len(last))
peak = max((kb for _, kb in rss), default=0)
if rss_first and rss_last > rss_first * 1.25 + 8 * 1024:
    problems.append("RSS grew from %.0f kB to %.0f kB" % (rss_first, rss_last))

print("requests: %d in %.1f s (%.0f/s) over %d connections" % (len(results), elapsed, len(results) / elapsed, args.connections))
print("statuses: %s" % dict(sorted(statuses.items(), key=lambda kv: str(kv[0]))))
print("reloads: %d good, %d broken (refused, old rules kept); slowest to take effect: %.0f ms" % (
    good, broken, max((w[1] - w[0]) * 1000 for w in windows) if windows else 0))
print("decisions checked against the rules in force: %d (others were sent during a reload)" % checked_consistency)
print("RSS: %.1f MB after warm-up, %.1f MB at the end, peak %.1f MB" % (rss_first / 1024, rss_last / 1024, peak / 1024))
if problems:
    print("FAILED: %d problems" % len(problems))
    for pr in problems[:20]:
        print("  " + pr)
    sys.exit(1)
print("OK: zero 5xx, zero dropped connections, every response FHIR, decisions consistent")
