// FHIR.js side of benches/peers/run.sh: read, parse and validate every file named on stdin
// (one path a line) against the R4 structure definitions, N times; print microseconds per file.
'use strict';
const fs = require('fs');
const { Fhir } = require('fhir');

const rounds = Number(process.argv[2] || 3);
const files = fs.readFileSync(0, 'utf8').split('\n').filter(Boolean);
const fhir = new Fhir();
let invalid = 0;
const t0 = process.hrtime.bigint();
for (let r = 0; r < rounds; r++) {
  for (const f of files) {
    const result = fhir.validate(JSON.parse(fs.readFileSync(f, 'utf8')));
    if (!result.valid) invalid++;
  }
}
const us = Number(process.hrtime.bigint() - t0) / 1000 / (rounds * files.length);
console.log(JSON.stringify({ peer: 'FHIR.js 4.12.0', us_per_file: us, invalid: invalid / rounds }));
