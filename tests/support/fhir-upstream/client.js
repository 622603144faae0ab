// A real FHIR client (Medplum's `MedplumClient` from @medplum/core, over Node's own fetch) run
// as one script against a FHIR base: create, conditional create, read, vread, update, history,
// search, a rejected order, batch and transaction. tests/fhir_client.rs runs it twice, straight
// against the FHIR server and through the gateway in front of another one, and compares.
//
// Usage: node client.js BASE < fixtures.json
//   fixtures: {"accepted": ServiceRequest, "rejected": ServiceRequest, "placerSystem": URI}
//   (the accepted order gets a PLAC identifier of `placerSystem` per use).
// Prints one JSON report on stdout: {"steps": [{step, status, ...}], "log": [...]} where
// `status` is the HTTP status the client got for the step's call (seen through the fetch the
// client was given; the client's own code does everything else). A step that throws records
// the client's error (its OperationOutcome) and the script goes on.
'use strict';

const { MedplumClient, normalizeOperationOutcome } = require('@medplum/core');

const base = process.argv[2];
if (!base) {
  process.stderr.write('usage: node client.js BASE < fixtures.json\n');
  process.exit(2);
}

/** Every call the client made: method, URL, status, Location. */
const log = [];

async function observingFetch(url, options) {
  const res = await fetch(url, options);
  log.push({
    method: options?.method ?? 'GET',
    url: String(url),
    status: res.status,
    location: res.headers.get('location') ?? undefined,
    etag: res.headers.get('etag') ?? undefined,
  });
  return res;
}

const medplum = new MedplumClient({
  baseUrl: base.endsWith('/') ? base : `${base}/`,
  // A plain FHIR base: no Medplum `fhir/R4/` path under it.
  fhirUrlPath: '',
  fetch: observingFetch,
  // Every read goes to the server (no answers from the client's cache).
  cacheTime: 0,
});

function last() {
  return log[log.length - 1] ?? {};
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/** The placer identifier value of a ServiceRequest, when it has one of `system`. */
function placerOf(resource, system) {
  return (resource?.identifier ?? []).find((i) => i.system === system)?.value;
}

/** What an error thrown by the client says: its OperationOutcome's issue codes and texts. */
function described(err) {
  const outcome = err?.outcome ?? normalizeOperationOutcome(err);
  return {
    error: String(err?.message ?? err),
    outcome: {
      resourceType: outcome?.resourceType,
      issue: (outcome?.issue ?? []).map((i) => ({
        severity: i.severity,
        code: i.code,
        detail: i.details?.coding?.[0]?.code,
      })),
    },
  };
}

/** Reads an absolute or relative URL through the client: status, id, versionId, placer. */
async function readBack(url, system) {
  try {
    const target = new URL(url, medplum.fhirBaseUrl);
    const resource = await medplum.get(target, { cache: 'no-cache' });
    return {
      status: last().status,
      url: target.toString(),
      id: resource?.id,
      versionId: resource?.meta?.versionId,
      placer: placerOf(resource, system),
    };
  } catch (err) {
    return { status: last().status, url, ...described(err) };
  }
}

async function main() {
  const fixtures = JSON.parse(await readStdin());
  delete fixtures.rejected.id;
  const system = fixtures.placerSystem;
  const order = (placer) => {
    const sr = structuredClone(fixtures.accepted);
    // A new order carries no id of its own (the server assigns one).
    delete sr.id;
    sr.identifier = [
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC' }] },
        system,
        value: placer,
      },
    ];
    return sr;
  };
  const steps = [];
  const step = async (name, fn) => {
    const before = log.length;
    try {
      const result = await fn();
      steps.push({ step: name, status: log[before]?.status, calls: log.length - before, ...result });
    } catch (err) {
      steps.push({ step: name, status: log[before]?.status, calls: log.length - before, ...described(err) });
    }
  };

  // create
  let created;
  await step('create', async () => {
    created = await medplum.createResource(order('C1'));
    const { location, etag } = last();
    return {
      resourceType: created.resourceType,
      id: created.id,
      versionId: created.meta?.versionId,
      placer: placerOf(created, system),
      location,
      etag,
      locationRead: location ? await readBack(location, system) : undefined,
    };
  });
  const id = created?.id;
  const vid = created?.meta?.versionId;

  // conditional create of the same order: the one already there, not a second
  await step('create-if-none-exist', async () => {
    const again = await medplum.createResource(order('C1'), {
      headers: { 'If-None-Exist': `identifier=${system}|C1` },
    });
    return { id: again.id, sameId: again.id === id };
  });

  await step('read', async () => {
    const r = await medplum.readResource('ServiceRequest', id);
    return { id: r.id, sameId: r.id === id, versionId: r.meta?.versionId, etag: last().etag };
  });

  await step('vread', async () => {
    const r = await medplum.readVersion('ServiceRequest', id, vid);
    return { id: r.id, sameId: r.id === id, sameVersion: r.meta?.versionId === vid };
  });

  // update: cancel the order (status revoked), as a GP system does
  await step('update', async () => {
    const current = await medplum.readResource('ServiceRequest', id);
    const before = log.length;
    const updated = await medplum.updateResource({ ...current, status: 'revoked' });
    return {
      status: log[before]?.status,
      id: updated.id,
      sameId: updated.id === id,
      newVersion: updated.meta?.versionId !== vid,
      resourceStatus: updated.status,
    };
  });

  await step('history', async () => {
    const h = await medplum.readHistory('ServiceRequest', id);
    return {
      type: h.type,
      entries: (h.entry ?? []).length,
      allSameId: (h.entry ?? []).every((e) => e.resource?.id === id),
      statuses: (h.entry ?? []).map((e) => e.resource?.status).sort(),
    };
  });

  await step('search', async () => {
    const b = await medplum.search('ServiceRequest', { identifier: `${system}|C1` });
    const first = b.entry?.[0];
    return {
      type: b.type,
      total: b.total,
      entries: (b.entry ?? []).length,
      ids: (b.entry ?? []).map((e) => e.resource?.id),
      fullUrlRead: first?.fullUrl ? await readBack(first.fullUrl, system) : undefined,
    };
  });

  // a rejected order: through the gateway 422 + OperationOutcome (the client throws)
  await step('create-rejected', async () => {
    const r = await medplum.createResource(fixtures.rejected);
    return { id: r.id, resourceType: r.resourceType };
  });

  // One read-back at a time, so that each keeps its own call's status.
  const entriesOf = async (bundle) => {
    const out = [];
    for (const e of bundle.entry ?? []) {
      out.push({
        status: e.response?.status,
        location: e.response?.location,
        read: e.response?.location ? await readBack(e.response.location, system) : undefined,
      });
    }
    return out;
  };

  const post = (resource) => ({ resource, request: { method: 'POST', url: 'ServiceRequest' } });

  // batch: accepted, rejected, accepted, in that order
  await step('batch', async () => {
    const b = await medplum.executeBatch({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [post(order('B1')), post(fixtures.rejected), post(order('B2'))],
    });
    return { type: b.type, entries: await entriesOf(b) };
  });

  // transaction of two accepted orders
  await step('transaction', async () => {
    const b = await medplum.executeBatch({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [post(order('T1')), post(order('T2'))],
    });
    return { type: b.type, entries: await entriesOf(b) };
  });

  // a transaction with a rejected entry: through the gateway 422, nothing of it created
  await step('transaction-rejected', async () => {
    const b = await medplum.executeBatch({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [post(order('T3')), post(fixtures.rejected)],
    });
    return { type: b.type, entries: await entriesOf(b) };
  });

  // what the base holds, as the client sees it
  await step('search-all', async () => {
    const b = await medplum.search('ServiceRequest', { _count: '100' });
    return {
      type: b.type,
      total: b.total,
      placers: (b.entry ?? []).map((e) => placerOf(e.resource, system) ?? null).sort(),
    };
  });

  process.stdout.write(`${JSON.stringify({ base, steps, log })}\n`);
}

main().catch((err) => {
  process.stderr.write(`client.js failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
