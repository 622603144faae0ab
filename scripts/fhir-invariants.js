#!/usr/bin/env node
// The FHIR R4 invariants that none of the four checkers of ../shared/tools/fhir-checkers
// evaluates (Bundle bdl-*, CapabilityStatement cpb-*, DomainResource dom-*), evaluated with
// HL7's fhirpath.js and its R4 model on the gateway's answers.
//
// usage: NODE_PATH=$FHIR_CHECKERS_HOME/node_modules node scripts/fhir-invariants.js [--warnings] FILE.json...
// Prints "PASS file" or "FAIL file: key (where) human" lines and a summary; exits 1 on any
// error-level failure. dom-6 (a narrative; a best practice) is a warning: counted, listed with
// --warnings, never a failure.
//
// The expressions are those of the R4 (4.0.1) StructureDefinitions, rewritten where the
// invariant's context is an element (e.g. Bundle.entry) to start from the resource, with
// `all()` over that element.
'use strict';
const fs = require('fs');
const fhirpath = require('fhirpath');
const r4 = require('fhirpath/fhir-context/r4');

const DOMAIN = [
  ['dom-2', 'error', 'contained.contained.empty()', 'a contained resource contains no resources'],
  // R4 writes `.as(canonical)` on collections, which FHIRPath (and fhirpath.js) refuse on more
  // than one item; R4B and R5 say the same with `ofType(...)`, as here (and without `trace`).
  ['dom-3', 'error',
    "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().ofType(canonical) | %resource.descendants().ofType(uri) | %resource.descendants().ofType(url))) or descendants().where(reference = '#').exists() or descendants().where(ofType(canonical) = '#').exists()).not()).empty()",
    'every contained resource is referred to from elsewhere in the resource'],
  ['dom-4', 'error', 'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()',
    'a contained resource has no meta.versionId or meta.lastUpdated'],
  ['dom-5', 'error', 'contained.meta.security.empty()', 'a contained resource has no security label'],
  ['dom-6', 'warning', 'text.`div`.exists()', 'a resource should have a narrative'],
];

const BY_TYPE = {
  Bundle: [
    ['bdl-1', 'error', "total.empty() or (type = 'searchset') or (type = 'history')",
      'total only when a search or history'],
    ['bdl-2', 'error', "entry.search.empty() or (type = 'searchset')", 'entry.search only when a search'],
    ['bdl-3', 'error',
      "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = 'history'))",
      'entry.request mandatory for batch/transaction/history, otherwise prohibited'],
    ['bdl-4', 'error',
      "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or %resource.type = 'history'))",
      'entry.response mandatory for batch-response/transaction-response/history, otherwise prohibited'],
    ['bdl-5', 'error', 'entry.all(resource.exists() or request.exists() or response.exists())',
      'an entry has a resource, a request or a response'],
    ['bdl-7', 'error',
      "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()",
      'fullUrl is unique in a Bundle (save in history)'],
    ['bdl-8', 'error', "entry.all(fullUrl.empty() or fullUrl.contains('/_history/').not())",
      'fullUrl is not a version-specific reference'],
    ['bdl-9', 'error', "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
      'a document has an identifier with system and value'],
    ['bdl-10', 'error', "type = 'document' implies (timestamp.hasValue())", 'a document has a timestamp'],
    ['bdl-11', 'error', "type = 'document' implies entry.first().resource.is(Composition)",
      'a document starts with a Composition'],
    ['bdl-12', 'error', "type = 'message' implies entry.first().resource.is(MessageHeader)",
      'a message starts with a MessageHeader'],
  ],
  CapabilityStatement: [
    ['cpb-1', 'error', 'rest.exists() or messaging.exists() or document.exists()',
      'at least one of rest, messaging or document'],
    ['cpb-2', 'error', '(description.count() + software.count() + implementation.count()) > 0',
      'at least one of description, software or implementation'],
    ['cpb-3', 'error', "messaging.endpoint.empty() or kind = 'instance'",
      'a messaging endpoint only for an implementation'],
    ['cpb-7', 'error', 'document.select(profile&mode).isDistinct()', 'documents are unique'],
    ['cpb-9', 'error', 'rest.all(resource.select(type).isDistinct())',
      'a resource is described once per RESTful mode'],
    ['cpb-12', 'error', 'rest.resource.all(searchParam.select(name).isDistinct())',
      'search parameter names are unique per resource'],
    ['cpb-14', 'error', "(kind != 'instance') or implementation.exists()",
      'kind instance: implementation present'],
    ['cpb-15', 'error', "(kind != 'capability') or (implementation.exists().not() and software.exists())",
      'kind capability: no implementation, software present'],
    ['cpb-16', 'error', "(kind!='requirements') or (implementation.exists().not() and software.exists().not())",
      'kind requirements: neither implementation nor software'],
  ],
};

/// The resources inside a resource that are resources of their own (the entries of a Bundle,
/// the outcomes of its responses, the parts of a Parameters), with where they are.
function nested(resource, where) {
  const out = [];
  (resource.entry || []).forEach((e, i) => {
    if (e.resource) out.push([e.resource, `${where}.entry[${i}].resource`]);
    if (e.response && e.response.outcome) out.push([e.response.outcome, `${where}.entry[${i}].response.outcome`]);
  });
  (resource.parameter || []).forEach((p, i) => {
    if (p.resource) out.push([p.resource, `${where}.parameter[${i}].resource`]);
  });
  return out;
}

function check(resource, where, failures) {
  const rules = [...(resource.resourceType === 'Bundle' || resource.resourceType === 'Parameters'
    ? [] : DOMAIN), ...(BY_TYPE[resource.resourceType] || [])];
  for (const [key, severity, expr, human] of rules) {
    let ok;
    try {
      const result = fhirpath.evaluate(resource, expr, { resource, rootResource: resource }, r4);
      ok = result.length === 1 && result[0] === true;
    } catch (e) {
      failures.push({ key, severity: 'error', where, human: `${human}: cannot evaluate (${e.message})` });
      continue;
    }
    if (!ok) failures.push({ key, severity, where, human });
  }
  for (const [inner, at] of nested(resource, where)) check(inner, at, failures);
}

let bad = 0;
let warnings = 0;
const args = process.argv.slice(2);
const listWarnings = args.includes('--warnings');
for (const file of args.filter((a) => a !== '--warnings')) {
  let resource;
  try {
    resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.log(`FAIL ${file}: not JSON (${e.message})`);
    bad++;
    continue;
  }
  const failures = [];
  check(resource, resource.resourceType || 'Resource', failures);
  const errors = failures.filter((f) => f.severity === 'error');
  warnings += failures.length - errors.length;
  if (errors.length) bad++;
  else console.log(`PASS ${file}`);
  for (const f of failures) {
    if (f.severity === 'error' || listWarnings) {
      console.log(`${f.severity === 'error' ? 'FAIL' : 'WARN'} ${file}: ${f.key} (${f.where}) ${f.human}`);
    }
  }
}
console.log(`# invariants (bdl-*, cpb-*, dom-*): ${bad} file(s) failing, ${warnings} warning(s) (dom-6: no narrative)`);
process.exit(bad ? 1 : 0);
