#!/usr/bin/env python3
"""Generates src/profile/r4/model.json: what fhirbolt's R4 model (fhirbolt-serde 0.4.0) refuses
beyond the element names and types of src/profile/r4/definitions.json, so that the gateway's
single-pass structure check (src/parse/shape.rs) can tell, without running fhirbolt, that fhirbolt
would accept a resource unchanged.

    python3 scripts/gen-r4-model.py ~/.cargo/registry/src/*/fhirbolt-serde-0.4.0 \
        src/profile/r4/definitions.json > src/profile/r4/model.json

Read from fhirbolt-serde's generated R4 deserializers, per object (resource, data type, backbone
element; keyed by its FHIR path as in definitions.json):

- "req": the elements fhirbolt requires (`missing_field`), each a list of names of which one must
  be present (a required choice element lists its variants);
- "choice": groups of names of which at most one may be present (a choice element's variants);
- "not": names definitions.json has but fhirbolt does not accept there (or the reverse);
- "unchecked": fhirbolt's deserializer for this path was not found; such objects are always
  left to fhirbolt.
"""
import glob
import json
import re
import sys

root = sys.argv[1] + "/src/model/generated/r4"
defs = json.load(open(sys.argv[2]))
HEADER = r"impl<'de> serde::de::DeserializeSeed<'de>\s+for &mut DeserializationContext<\s*(\w+)\s*>\s*\{"
TYPE = r"DeserializationContext<(Box<|Vec<)?fhirbolt_model::r4::(?:types::|resources::)?(\w+)"
blocks = {}
for f in sorted(glob.glob(root + "/resources/*.rs") + glob.glob(root + "/types/*.rs")):
    parts = re.split(HEADER, open(f).read())
    for i in range(1, len(parts), 2):
        name, body = parts[i], parts[i + 1]
        m = re.search(r"fn unknown_field_error.*?&\[(.*?)\]", body, re.S)
        known = re.findall(r'"([^"]+)"', m.group(1)) if m else []
        req = re.findall(r'missing_field\("([^"]+)"\)', body)
        renames = {v: k for k, v in re.findall(r'#\[serde\(rename = "([^"]+)"\)\]\s*(\w+),', body)}
        groups = {}
        pattern = r"Field::(\w+) => \{\s*use fhirbolt_model::r4::\w+::(\w+) as _Enum;"
        for var, enum in re.findall(pattern, body):
            groups.setdefault(enum, []).append(renames[var])
        choice = [sorted(set(g)) for g in groups.values() if len(set(g)) > 1]
        # Per element: the type fhirbolt reads it as, and whether it reads a list.
        types = {}
        arms = re.split(r"\n\s*Field::(\w+) => \{", body)
        for j in range(1, len(arms), 2):
            var, arm = arms[j], re.sub(r"\s+", "", arms[j + 1])
            t = re.search(TYPE, arm)
            if t and var in renames:
                many = t.group(1) == "Vec<" or "values:Vec<Option<_>>" in arm
                types[renames[var]] = (t.group(2), many)
        blocks[name] = dict(known=known, req=sorted(set(req)), choice=choice, types=types)

out = {}
problems = []


def camel(path):
    return "".join(p[0].upper() + p[1:] for p in path.split("."))


def visit(path, elements, struct):
    b = blocks.get(struct)
    if b is None:
        out[path] = {"unchecked": True}
        problems.append(f"{path}: no deserializer {struct}")
    else:
        names = set(elements)
        differ = set(names ^ set(b["known"]))
        # An element whose type or repetition differs between the two is left to fhirbolt too.
        for k, e in elements.items():
            got = b["types"].get(k)
            if got is None:
                continue
            if "e" in e:
                want = camel(path + "." + k)
            elif e["t"].startswith("#"):
                want = camel(e["t"][1:])
            else:
                want = e["t"][0].upper() + e["t"][1:]
            if got != (want, bool(e.get("m"))):
                differ.add(k)
        differ = sorted(differ)
        if differ:
            problems.append(f"{path}: names differ {differ}")
        req = []
        for r in b["req"]:
            if r.endswith("[x]"):
                base = r[:-3]
                group = [g for g in b["choice"] if all(n.lstrip("_").startswith(base) for n in g)]
                if len(group) != 1:
                    problems.append(f"{path}: required choice {r} without one group")
                    out[path] = {"unchecked": True}
                    return
                req.append([n for n in group[0] if not n.startswith("_")])
            else:
                req.append([r])
        entry = {k: v for k, v in (("req", req), ("choice", b["choice"]), ("not", differ)) if v}
        if entry:
            out[path] = entry
    for k, e in sorted(elements.items()):
        if "e" in e:
            visit(path + "." + k, e["e"], camel(path + "." + k))


for t, td in sorted(defs["types"].items()):
    if t in ("Resource", "DomainResource", "Element", "BackboneElement"):
        continue
    visit(t, td["e"], t)
for p in problems:
    print(p, file=sys.stderr)
json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"))
print()
