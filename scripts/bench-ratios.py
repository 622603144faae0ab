#!/usr/bin/env python3
"""Ratios of the pipeline stages to the plain serde_json parse (the floor), from criterion's
estimates in target/criterion (run `cargo bench --bench pipeline` first). Prints a markdown
table: input, bytes, and for each stage the mean time and its ratio to `json_value`."""
import json, pathlib, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
stages = ["json_value", "parse", "decide", "answer"]

def mean(group, stage):
    d = root / group / stage
    found = sorted(d.glob("*/new/estimates.json")) if d.is_dir() else []
    if not found:
        return None, None
    est = json.load(open(found[0]))
    return est["mean"]["point_estimate"], found[0].parent.parent.name

def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"

print("| input | bytes | " + " | ".join(stages) + " |")
print("|---|---:|" + "---:|" * len(stages))
for group in ["sr_accepted", "sr_rejected", "sr_redirected", "bundle_100", "bundle_1000", "bundle_10000"]:
    floor, size = mean(group, "json_value")
    if floor is None:
        continue
    cells = []
    for s in stages:
        t, _ = mean(group, s)
        cells.append("-" if t is None else f"{fmt(t)} ({t / floor:.1f}×)")
    print(f"| {group} | {size} | " + " | ".join(cells) + " |")
