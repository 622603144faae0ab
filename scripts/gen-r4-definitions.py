#!/usr/bin/env python3
"""Generates src/profile/r4/definitions.json: what the gateway checks on every element of every
FHIR R4 resource and data type, taken from the R4 (4.0.1) definitions.

Source: the R4 StructureDefinitions (profiles-resources.json, profiles-types.json) and value sets
(valuesets.json) of the FHIR 4.0.1 specification, as packaged in the npm package `fhir` (FHIR.js,
Apache-2.0), whose `profiles/types.json` and `profiles/valuesets.json` are those definitions
flattened per type. The specification's content is CC0 (HL7 FHIR licence).

    npm pack fhir@4.12.0 && tar xzf fhir-4.12.0.tgz
    python3 scripts/gen-r4-definitions.py package/profiles > src/profile/r4/definitions.json

Kept per element: its type code, whether it repeats, the value set of a required binding, and
the resource types a Reference may point at. Required value sets are kept when the definitions
enumerate them (the codes of FHIR's own code systems); value sets defined by an external
terminology (MIME types, languages, UCUM, currencies) are named in `unexpanded` and left to a full
validator.
"""
import json
import sys

src = sys.argv[1]
types = json.load(open(f"{src}/types.json"))
valuesets = json.load(open(f"{src}/valuesets.json"))

PRIMITIVES = {
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
    "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
    "uri", "url", "uuid", "xhtml",
}

used_value_sets = set()


def element(p):
    out = {"t": p["_type"]}
    if p.get("_multiple"):
        out["m"] = 1
    if p.get("_valueSetStrength") == "required" and p.get("_valueSet"):
        vs = p["_valueSet"].split("|")[0]
        out["b"] = vs
        used_value_sets.add(vs)
    targets = [t.rsplit("/", 1)[-1] for t in p.get("_targetProfiles", [])]
    if targets:
        out["r"] = targets
    children = p.get("_properties")
    if p["_type"] in ("BackboneElement", "Element") and children:
        out["e"] = elements(children)
    return out


def elements(props):
    return {p["_name"]: element(p) for p in props if not p["_name"].startswith("_")}


result = {"types": {}, "valueSets": {}, "unexpanded": []}
for name, t in sorted(types.items()):
    if name in PRIMITIVES:
        continue
    result["types"][name] = {
        "kind": t.get("_kind"),
        "e": elements(t.get("_properties", [])),
    }
for vs in sorted(used_value_sets):
    body = valuesets.get(vs)
    if not body or not body.get("systems"):
        result["unexpanded"].append(vs)
        continue
    result["valueSets"][vs] = {
        s["uri"]: sorted({c["code"] for c in s.get("codes", [])}) for s in body["systems"]
    }
json.dump(result, sys.stdout, separators=(",", ":"), sort_keys=True)
