"""fhir.resources side of benches/peers/run.sh: read, parse and validate every file named on
stdin (one path a line) into the pydantic model of its resource type, N times; print
microseconds per file. fhir.resources 8 ships R5 by default; its R4B package is the one for R4
content (ServiceRequest is the same in R4 and R4B)."""
import json
import sys
import time

from fhir.resources.R4B import get_fhir_model_class

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
files = [line.strip() for line in sys.stdin if line.strip()]
invalid = 0
t0 = time.perf_counter_ns()
for _ in range(rounds):
    for f in files:
        with open(f, "rb") as fh:
            data = json.loads(fh.read())
        try:
            get_fhir_model_class(data["resourceType"]).model_validate(data)
        except Exception:  # a validation error is a result here, not a failure
            invalid += 1
us = (time.perf_counter_ns() - t0) / 1000 / (rounds * len(files))
print(json.dumps({"peer": "fhir.resources 8.3.0 (R4B)", "us_per_file": us, "invalid": invalid / rounds}))
