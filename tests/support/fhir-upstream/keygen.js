// Writes a client key pair for the SMART Backend Services tests: node keygen.js DIR rsa|ec
// → DIR/private.pem (RSA: PKCS#1, EC P-384: PKCS#8), the same private key as DIR/private.jwk
// (a JWK with `kid` `{rsa|ec}-client-key`), and DIR/public.pem (SPKI). Node's crypto.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const [dir, kind] = process.argv.slice(2);
const { privateKey, publicKey } =
  kind === 'ec'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(
  path.join(dir, 'private.pem'),
  privateKey.export({ type: kind === 'ec' ? 'pkcs8' : 'pkcs1', format: 'pem' }),
);
fs.writeFileSync(path.join(dir, 'public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
fs.writeFileSync(
  path.join(dir, 'private.jwk'),
  JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid: `${kind}-client-key` }),
);
