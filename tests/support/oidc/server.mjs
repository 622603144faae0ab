// A real OpenID Connect provider (oidc-provider) for the gateway's authentication tests.
//
// It issues client-credentials access tokens, as JWTs, to clients that authenticate with a
// signed JWT assertion (private_key_jwt: SMART Backend Services). Everything comes from the
// JSON file named on the command line (keys as PEM, made by the Rust tests):
//   { "signingKey": { "pem": PKCS#8 private key, "kid", "alg" },
//     "audience": the resource the tokens are for (the default resource),
//     "scopes": every scope the resource server knows,
//     "ttl": access token lifetime in seconds,
//     "clients": [{ "client_id", "publicKeyPem", "kid", "alg", "scope": "allowed scopes" }],
//     "consoleClients": [{ "client_id", "scope", "resourceScope": optional, the resource scopes
//                          its users' access tokens may carry (default: all) }] }
// A console client is a public client (no secret) that signs users in with the authorization
// code flow and PKCE, redirecting to http://127.0.0.1:ANY-PORT/console/callback (a native
// client's loopback redirect, RFC 8252 §7.3). With console clients the provider's development
// sign-in and consent pages are on: any login and password sign in.
// It listens on a free loopback port and prints one line, "issuer http://127.0.0.1:PORT", on
// stdout once it serves.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const signingKey = {
  ...createPrivateKey(config.signingKey.pem).export({ format: 'jwk' }),
  kid: config.signingKey.kid,
  alg: config.signingKey.alg,
  use: 'sig',
};
const clientJwks = (c) => ({
  keys: [{ ...createPublicKey(c.publicKeyPem).export({ format: 'jwk' }), kid: c.kid, alg: c.alg, use: 'sig' }],
});
const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const scopes = config.scopes.join(' ');
  const narrowed = Object.fromEntries((config.consoleClients ?? [])
    .filter((c) => c.resourceScope !== undefined)
    .map((c) => [c.client_id, c.resourceScope]));
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: c.alg,
      jwks: clientJwks(c),
      // No ID tokens are issued; the client's default must still be an algorithm the
      // provider's one key can sign with.
      id_token_signed_response_alg: signingKey.alg,
      scope: c.scope,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })).concat((config.consoleClients ?? []).map((c) => ({
      client_id: c.client_id,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: signingKey.alg,
      scope: c.scope,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/console/callback'],
    }))),
    scopes: config.scopes,
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'RS256', 'RS384'],
      idTokenSigningAlgValues: [signingKey.alg],
    },
    features: {
      devInteractions: { enabled: (config.consoleClients ?? []).length > 0 },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.audience,
        useGrantedResource: () => true,
        // Any resource asked for is served, so that a test can have a token for another
        // audience; the tokens are JWTs signed with the configured key.
        // A console client may be given fewer resource scopes (`resourceScope`): a user who
        // signs in through it gets an access token without the others.
        getResourceServerInfo: (_ctx, resourceIndicator, client) => ({
          scope: narrowed[client?.clientId] ?? scopes,
          audience: resourceIndicator,
          accessTokenTTL: config.ttl ?? 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: signingKey.alg } },
        }),
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`issuer ${issuer}\n`);
  // The test reads that one line and may close the pipe: later output (oidc-provider's notes
  // when its sign-in pages render) goes to stderr, and a closed stdout is not fatal.
  process.stdout.on('error', () => {});
  console.log = (...args) => console.error(...args);
  console.info = console.log;
});
